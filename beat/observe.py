"""What the provisioner reads at each tick, in two pipelined round trips per tick plus
one per pool: violation windows, tier queue depths, the replica registry, estimates,
measured load times, and the fleet (agents, leases, replica states)."""

from __future__ import annotations

import math

from cato_mq import fleet, keys
from cato_mq.fleet import FleetView, Redis
from cato_mq.observe import STALE_HEARTBEATS, parse_entry
from cato_mq.provisioner import Observations, PoolObs
from cato_mq.settings import Settings


def sliding(current: dict[str, str], previous: dict[str, str], field: str, frac: float) -> float:
    """Count over the last full window: this window so far plus the part of the previous
    window it does not cover yet (the usual sliding-window-counter approximation)."""
    return int(current.get(field, 0)) + int(previous.get(field, 0)) * (1.0 - frac)


def pool_obs(raw: list[object], replicas: list[fleet.ReplicaRecord], frac: float, now: float,
             stale_s: float, window_s: float) -> PoolObs:
    cur, prev, *rest = raw
    steps = len(keys.PRIORITY_STEPS)
    lengths, (registry, node_s, load_s) = rest[: steps * len(keys.TIERS)], rest[steps * len(keys.TIERS):]
    assert isinstance(cur, dict) and isinstance(prev, dict) and isinstance(registry, dict)
    # nodes the router queued as violated (deadline passed) or at risk (no replica can meet
    # it at the current queue) are violations already known, before any of them completes:
    # counting them is what makes the provisioner act before the queue grows long
    # (cato+'s best-effort nodes are known misses too; the sim counts them the same way)
    late = [i for i, t in enumerate(keys.TIERS) if t != "safe"]
    queued_violated = sum(int(x) for i in late for x in lengths[i * steps : (i + 1) * steps])  # type: ignore[call-overload]
    queued = sum(int(x) for x in lengths)  # type: ignore[call-overload]
    ready = starting = draining = idle = inflight = slots = fresh = 0
    for r in replicas:
        if r.state in ("requested", "starting"):
            starting += 1
        elif r.state == "draining":
            draining += 1
        elif r.state == "ready":
            ready += 1
            fresh += now - r.since < window_s  # the window's counts predate it
            entry = registry.get(r.name)
            if entry is not None:
                busy, concurrency, beat, _ = parse_entry(entry)
                if now - beat <= stale_s:
                    inflight += busy
                    slots += concurrency
                    idle += busy == 0
    violations = sliding(cur, prev, "node_violations", frac) + queued_violated
    return PoolObs(
        violations=round(violations), nodes=round(sliding(cur, prev, "nodes", frac)), queued=queued,
        ready=ready, starting=starting, draining=draining, idle=idle, inflight=inflight, slots=slots,
        fresh=fresh, load_s=float(load_s or 0.0), node_s=float(node_s or 0.0),  # type: ignore[arg-type]
    )


def gather(client: Redis, settings: Settings, now: float) -> tuple[Observations, FleetView]:
    view = fleet.read(client)
    span = settings.window_s
    start = math.floor(now / span) * span
    frac = (now - start) / span
    pipe = client.pipeline(transaction=False)
    for pool in settings.pools:
        pipe.hgetall(keys.window(pool, int(start)))
        pipe.hgetall(keys.window(pool, int(start - span)))
        for tier in keys.TIERS:
            for name in keys.queue_lists(pool, tier):
                pipe.llen(name)
        pipe.hgetall(keys.replicas(pool))
        pipe.hget(keys.estimates(pool), "node")
        pipe.hget(keys.load_times(), pool)
    raw = pipe.execute()
    per = len(raw) // len(settings.pools)
    stale = STALE_HEARTBEATS * settings.heartbeat_s
    pools = {
        pool: pool_obs(raw[i * per : (i + 1) * per], view.replicas(pool), frac, now, stale, span)
        for i, pool in enumerate(settings.pools)
    }
    return Observations(now, pools, view.free_devices, span), view
