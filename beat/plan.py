"""Turn desired replica counts into orders for the agents. Pure.

Spawns go to the live agent with the most free devices (spreading a pool over hosts, so
one host's death costs it the fewest replicas); retires take the ready replica with the
least in flight (its drain ends soonest), newest first on ties, and retire a replica that
is still starting before any that serves.
"""

from __future__ import annotations

from dataclasses import dataclass

from cato_mq.fleet import FleetView, worker_name


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
            ranked = sorted(
                live, key=lambda r: (r.state == "ready", inflight.get(r.name, 0), -r.since),
            )
            orders += [Order("retire", r.host, r.device, pool, r.name) for r in ranked[:-delta]]
    return orders
