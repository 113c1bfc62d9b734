"""Live pool state read from Redis: one pipelined round trip, cached briefly per process."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import redis

from cato_mq import keys
from cato_mq.tiers import Tier

#: Tiers whose queues a node may wait behind; best effort is served after every node the
#: router places, so the router does not read it.
AHEAD = tuple(t for t in keys.TIERS if t != Tier.best_effort)
#: Registry entries older than this many heartbeats belong to dead or stuck workers.
STALE_HEARTBEATS = 3


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    queued: dict[Tier, int]
    replicas: int
    slots: int
    inflight: int
    estimates: dict[str, float] = field(default_factory=dict)
    read_at: float = 0.0

    @property
    def queued_total(self) -> int:
        return sum(self.queued.values())

    def estimate(self, name: str, default: float) -> float:
        return self.estimates.get(name, default)


def parse_entry(entry: str) -> tuple[int, int, float, str]:
    """A registry value: (in flight, concurrency, heartbeat wall time, state)."""
    busy, concurrency, beat, *rest = entry.split()
    return int(busy), int(concurrency), float(beat), rest[0] if rest else "ready"


def parse_snapshot(
    lengths: list[int], registry: dict[str, str], estimates: dict[str, str], now: float, stale_s: float
) -> PoolSnapshot:
    """Turn the raw replies of ``read_pool`` into a snapshot (pure, for tests)."""
    steps = len(keys.PRIORITY_STEPS)
    queued = {Tier(t): sum(lengths[i * steps : (i + 1) * steps]) for i, t in enumerate(AHEAD)}
    replicas = slots = inflight = 0
    for entry in registry.values():
        busy, concurrency, beat, state = parse_entry(entry)
        if now - beat > stale_s or state == "draining":
            continue  # dead, stuck or leaving: its slots take no new work
        replicas += 1
        slots += concurrency
        inflight += busy
    return PoolSnapshot(
        queued, replicas, slots, inflight, {k: float(v) for k, v in estimates.items()}, now
    )


def read_pool(client: redis.Redis[str], pool: str, stale_s: float) -> PoolSnapshot:
    pipe = client.pipeline(transaction=False)
    for tier in AHEAD:
        for name in keys.queue_lists(pool, tier):
            pipe.llen(name)
    pipe.hgetall(keys.replicas(pool))
    pipe.hgetall(keys.estimates(pool))
    *lengths, registry, estimates = pipe.execute()
    return parse_snapshot(lengths, registry, estimates, time.time(), stale_s)


class Observer:
    """Caches one snapshot per pool for ``ttl_s`` so a burst of publishes costs one read."""

    def __init__(self, client: redis.Redis[str], ttl_s: float, stale_s: float) -> None:
        self._client = client
        self._ttl = ttl_s
        self._stale = stale_s
        self._cache: dict[str, tuple[float, PoolSnapshot]] = {}
        self._lock = threading.Lock()

    def pool(self, pool: str) -> PoolSnapshot:
        now = time.monotonic()
        hit = self._cache.get(pool)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        snap = read_pool(self._client, pool, self._stale)
        with self._lock:
            self._cache[pool] = (now, snap)
        return snap

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()
