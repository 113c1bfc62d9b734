"""What the provisioner reads at each tick, in two pipelined round trips per tick plus
one per pool: violation windows, tier queue depths, the replica registry, estimates,
measured load times, and the fleet (agents, leases, replica states)."""

from __future__ import annotations

from dataclasses import dataclass

from cato_mq.fleet import records
from cato_mq.fleet.records import FleetView, Redis, ReplicaRecord
from cato_mq.policy import window
from cato_mq.policy.provisioning import Observations, PoolObs
from cato_mq.policy.tiers import Tier
from cato_mq.settings import Settings
from cato_mq.state import keys, pool, registry

#: Tiers whose queued nodes are violations already known (see ``pool_obs``).
LATE = tuple(t for t in keys.TIERS if t != Tier.safe)


@dataclass(frozen=True, slots=True)
class Gathered:
    observations: Observations
    view: FleetView
    #: replica name -> nodes in flight, from the registry read in the same pipeline
    inflight: dict[str, int]


def _count(counters: dict[str, str], field: str) -> int:
    return int(counters.get(field, 0))


def pool_obs(raw: list[object], replicas: list[ReplicaRecord], frac: float, now: float,
             stale_s: float, window_s: float) -> tuple[PoolObs, dict[str, int]]:
    """One pool's observations from its slice of the tick's pipeline replies, and the
    in-flight count of each of its registry entries."""
    cur, prev, *rest = raw
    n = pool.replies_for(keys.TIERS)
    queued_by_tier, (raw_registry, node_s, load_s) = pool.depths(rest[:n], keys.TIERS), rest[n:]
    assert isinstance(cur, dict) and isinstance(prev, dict) and isinstance(raw_registry, dict)
    entries = registry.parse_all(raw_registry)
    # nodes the router queued as violated (deadline passed) or at risk (no replica can meet
    # it at the current queue) are violations already known, before any of them completes:
    # counting them is what makes the provisioner act before the queue grows long
    # (cato+'s best-effort nodes are known misses too; the sim counts them the same way)
    queued_violated = sum(queued_by_tier[t] for t in LATE)
    queued = sum(queued_by_tier.values())
    ready = starting = draining = idle = inflight = slots = fresh = 0
    for r in replicas:
        if r.state in ("requested", "starting"):
            starting += 1
        elif r.state == "draining":
            draining += 1
        elif r.state == "ready":
            ready += 1
            fresh += now - r.since < window_s  # the window's counts predate it
            entry = entries.get(r.name)
            if entry is not None and entry.live(now, stale_s):
                inflight += entry.inflight
                slots += entry.concurrency
                idle += entry.inflight == 0
    violations = window.sliding(_count(cur, "node_violations"), _count(prev, "node_violations"), frac)
    obs = PoolObs(
        violations=round(violations + queued_violated),
        nodes=round(window.sliding(_count(cur, "nodes"), _count(prev, "nodes"), frac)), queued=queued,
        ready=ready, starting=starting, draining=draining, idle=idle, inflight=inflight, slots=slots,
        fresh=fresh, load_s=float(load_s or 0.0), node_s=float(node_s or 0.0),  # type: ignore[arg-type]
    )
    return obs, {name: e.inflight for name, e in entries.items()}


def gather(client: Redis, settings: Settings, now: float) -> Gathered:
    view = records.read(client)
    span = settings.window_s
    index, frac = window.position(now, span)
    start = index * span
    pipe = client.pipeline(transaction=False)
    for name in settings.pools:
        pipe.hgetall(keys.window(name, int(start)))
        pipe.hgetall(keys.window(name, int(start - span)))
        pool.queue_depths(pipe, name, keys.TIERS)
        pipe.hgetall(keys.replicas(name))
        pipe.hget(keys.estimates(name), "node")
        pipe.hget(keys.load_times(), name)
    raw = pipe.execute()
    per = len(raw) // len(settings.pools)
    stale = registry.stale_after(settings.heartbeat_s)
    pools: dict[str, PoolObs] = {}
    inflight: dict[str, int] = {}
    for i, name in enumerate(settings.pools):
        pools[name], busy = pool_obs(raw[i * per : (i + 1) * per], view.replicas(name), frac, now, stale, span)
        inflight |= busy
    return Gathered(Observations(now, pools, view.free_devices, span), view, inflight)

