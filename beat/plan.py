"""Turn desired replica counts into orders for the agents. Pure.

Spawns go to the live agent with the most free devices (spreading a pool over hosts, so
one host's death costs it the fewest replicas); retires follow ``policy.placement``'s
ranking (a replica still starting first, then the one with the least in flight).
"""

from __future__ import annotations

from dataclasses import dataclass

from cato_mq.fleet.records import FleetView, worker_name
from cato_mq.policy.placement import retire_order


@dataclass(frozen=True, slots=True)
class Order:
    op: str  # "spawn" or "retire"
    host: str
    device: str
    pool: str
    name: str


def plan(desired: dict[str, int], view: FleetView, inflight: dict[str, int]) -> list[Order]:
    """``inflight``: replica name -> nodes in flight (from the registry)."""
    orders: list[Order] = []
    free = {h: list(a.free) for h, a in view.agents.items()}
    for pool in sorted(desired):
        live = [r for r in view.replicas(pool) if r.state in ("requested", "starting", "ready")]
        delta = desired[pool] - len(live)
        for _ in range(delta):
            host = max(sorted(free), key=lambda h: len(free[h]), default=None)
            if host is None or not free[host]:
                break  # no device left: fit_devices asked for what it could
            device = free[host].pop(0)
            name = worker_name(pool, view.agents[host].engine, device, host)
            orders.append(Order("spawn", host, device, pool, name))
        if delta < 0:
            ranked = retire_order(live, lambda r: inflight.get(r.name, 0))
            orders += [Order("retire", r.host, r.device, pool, r.name) for r in ranked[:-delta]]
    return orders
