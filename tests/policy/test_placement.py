"""The retire ranking both the beat's planner and the simulator use."""

from __future__ import annotations

from dataclasses import dataclass

from cato_mq.policy.placement import retire_order


@dataclass
class R:
    name: str
    state: str
    since: float
    inflight: int


def test_starting_first_then_least_in_flight_then_newest() -> None:
    replicas = [R("old-busy", "ready", 1, 3), R("old-idle", "ready", 2, 0), R("new-idle", "ready", 5, 0),
                R("loading", "starting", 0, 0)]
    order = retire_order(replicas, lambda r: r.inflight)
    assert [r.name for r in order] == ["loading", "new-idle", "old-idle", "old-busy"]
