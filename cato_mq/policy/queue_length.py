"""The baseline scaling policy: Ray Serve's queue-length autoscaler. Pure, same signature as
``provisioning.decide`` so the tick and the simulator can run either (``policy.scaling``).

Ray Serve (``serve/autoscaling_policy.py``, default config): desired replicas =
ceil(ongoing requests / ``target_ongoing_requests``), where ongoing = queued + running;
a move up (down) is carried out only once the desire has persisted for
``upscale_delay_s`` (``downscale_delay_s``), and then straight to the desired count.
"""

from __future__ import annotations

import math
from dataclasses import replace

from cato_mq.policy.provisioner_config import ProvisionerConfig
from cato_mq.policy.provisioning import Observations, PoolObs, PoolState, State, decide_each


def decide_pool(
    pool: str, o: PoolObs, s: PoolState, now: float, c: ProvisionerConfig
) -> tuple[int, PoolState]:
    lo, hi = c.min_for(pool), c.max_for(pool)
    if o.current < lo:
        return lo, replace(s, last_change=now, want=0, want_since=None)
    ongoing = o.queued + o.inflight
    target = max(lo, min(hi, math.ceil(ongoing / c.target_ongoing)))
    direction = (target > o.current) - (target < o.current)
    if direction == 0:
        return o.current, replace(s, want=0, want_since=None)
    since = s.want_since if s.want == direction and s.want_since is not None else now
    delay = c.upscale_delay_s if direction > 0 else c.downscale_delay_s
    if now - since >= delay and o.draining == 0:
        return target, replace(s, last_change=now, want=0, want_since=None)
    return o.current, replace(s, want=direction, want_since=since)


def decide(obs: Observations, state: State, config: ProvisionerConfig) -> tuple[dict[str, int], State]:
    return decide_each(obs, state, config, lambda pool, o, s, tick, c: decide_pool(pool, o, s, tick.now, c))
