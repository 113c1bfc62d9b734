"""The scaling-policy registry: one per name, each a pure decide() over every pool."""

from __future__ import annotations

from typing import get_args

from cato_mq.policy import provisioning, queue_length
from cato_mq.policy.provisioner_config import Policy, ProvisionerConfig
from cato_mq.policy.provisioning import Observations, PoolObs
from cato_mq.policy.scaling import POLICIES


def test_every_configurable_policy_is_registered() -> None:
    assert set(POLICIES) == set(get_args(Policy))
    assert POLICIES["cato"] is provisioning.decide and POLICIES["queue_length"] is queue_length.decide


def test_each_policy_decides_for_every_pool_within_the_devices() -> None:
    obs = Observations(now=100.0, free_devices=1, pools={
        "a": PoolObs(queued=40, ready=1, slots=4, inflight=4, violations=40, nodes=10, node_s=1.0),
        "b": PoolObs(queued=40, ready=1, slots=4, inflight=4, violations=40, nodes=10, node_s=1.0),
    })
    for decide in POLICIES.values():
        desired, state = decide(obs, {}, ProvisionerConfig(upscale_delay_s=0))
        assert set(desired) == set(state) == {"a", "b"}
        assert sum(desired.values()) - 2 <= 1  # one free device between them
