"""Placement of spawns and choice of retirees (beat/plan.py). Pure."""

from __future__ import annotations

from beat.plan import Order, plan
from cato_mq.fleet.records import AgentView, FleetView, ReplicaRecord


def view(**hosts: dict[str, tuple[str, str, float]]) -> FleetView:
    """hosts: name -> {device: (pool, state, since)}; every host has devices 0..2."""
    agents = {}
    for host, reps in hosts.items():
        replicas = {d: ReplicaRecord(f"{p}-sim-d{d}@{host}", p, host, d, s, t) for d, (p, s, t) in reps.items()}
        agents[host] = AgentView(host, ("0", "1", "2"), "sim", 0.0, replicas)
    return FleetView(agents)


def test_spawns_spread_over_the_hosts_with_most_free_devices() -> None:
    v = view(a={"0": ("p", "ready", 1.0)}, b={})
    orders = plan({"p": 4}, v, {})
    assert [(o.op, o.host, o.device) for o in orders] == [("spawn", "b", "0"), ("spawn", "a", "1"),
                                                           ("spawn", "b", "1")]
    assert orders[0].name == "p-sim-d0@b"


def test_spawns_stop_when_devices_run_out() -> None:
    v = view(a={"0": ("p", "ready", 1.0), "1": ("q", "ready", 1.0)})
    assert [o.device for o in plan({"p": 5, "q": 1}, v, {})] == ["2"]


def test_retire_prefers_starting_then_least_inflight_then_newest() -> None:
    v = view(a={"0": ("p", "ready", 1.0), "1": ("p", "ready", 2.0), "2": ("p", "starting", 3.0)},
             b={"0": ("p", "ready", 4.0), "1": ("p", "draining", 5.0)})
    inflight = {"p-sim-d0@a": 0, "p-sim-d1@a": 3, "p-sim-d0@b": 0}
    orders = plan({"p": 1}, v, inflight)
    assert orders == [Order("retire", "a", "2", "p", "p-sim-d2@a"), Order("retire", "b", "0", "p", "p-sim-d0@b"),
                      Order("retire", "a", "0", "p", "p-sim-d0@a")]


def test_nothing_to_do_when_counts_match() -> None:
    v = view(a={"0": ("p", "requested", 1.0), "1": ("p", "draining", 1.0)})
    assert plan({"p": 1}, v, {}) == []
