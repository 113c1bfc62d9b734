"""The scaling policies by name (``CATO_SCALE_POLICY``): the one registry the beat's tick
and the simulator both choose from. Each is a pure ``decide(observations, state, config)
-> (desired replicas per pool, new state)``."""

from __future__ import annotations

from collections.abc import Callable

from cato_mq.policy import provisioning, queue_length
from cato_mq.policy.provisioner_config import Policy, ProvisionerConfig
from cato_mq.policy.provisioning import Observations, State

Decide = Callable[[Observations, State, ProvisionerConfig], tuple[dict[str, int], State]]

POLICIES: dict[Policy, Decide] = {"cato": provisioning.decide, "queue_length": queue_length.decide}
