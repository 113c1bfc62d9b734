"""The Ray Serve-style queue-length baseline, on scripted observations. Pure."""

from __future__ import annotations

from cato_mq.policy.provisioner_config import ProvisionerConfig
from cato_mq.policy.provisioning import Observations, PoolObs, State
from cato_mq.policy.queue_length import decide

CFG = ProvisionerConfig(default_min=1, default_max=5, target_ongoing=2, upscale_delay_s=3, downscale_delay_s=20)


def run(script: list[tuple[float, PoolObs]]) -> list[int]:
    state: State = {}
    out = []
    for now, o in script:
        desired, state = decide(Observations(now, {"p": o}, 10), state, CFG)
        out.append(desired["p"])
    return out


def test_scales_to_ongoing_over_target_after_the_upscale_delay() -> None:
    busy = PoolObs(ready=1, inflight=4, queued=4)  # 8 ongoing -> 4 replicas
    assert run([(0.0, busy), (2.0, busy), (3.0, busy)]) == [1, 1, 4]


def test_a_dip_restarts_the_delay_and_max_caps() -> None:
    busy, quiet = PoolObs(ready=1, inflight=4, queued=40), PoolObs(ready=1, inflight=1)
    assert run([(0.0, busy), (2.0, quiet), (4.0, busy), (7.0, busy)]) == [1, 1, 1, 5]


def test_scales_down_only_after_the_long_downscale_delay() -> None:
    idle = PoolObs(ready=4)
    assert run([(0.0, idle), (19.0, idle), (20.0, idle)]) == [4, 4, 1]
