"""Live pool state read from Redis: tier queue depths, the registry and the estimates.

The router reads one ``PoolSnapshot`` per pool in one pipelined round trip, cached briefly
per process (``Observer``); the provisioner's tick reads the same queue depths with
``queue_depths`` in its own pipeline (``beat.gather``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import redis

from cato_mq.policy.tiers import AHEAD, PoolSnapshot, Tier
from cato_mq.state import keys, registry

if TYPE_CHECKING:  # types-redis makes clients generic in their reply type
    Redis: TypeAlias = redis.Redis[str]
    Pipeline: TypeAlias = redis.client.Pipeline[str]


def queue_depths(pipe: Pipeline, pool: str, tiers: Iterable[str]) -> None:
    """Queue on ``pipe`` one ``LLEN`` per Redis list of each tier queue (kombu splits a queue
    into one list per priority step); ``depths`` sums the replies per tier."""
    for tier in tiers:
        for name in keys.queue_lists(pool, tier):
            pipe.llen(name)


def replies_for(tiers: Sequence[str]) -> int:
    """How many pipeline replies ``queue_depths`` of ``tiers`` takes."""
    return sum(keys.list_count(t) for t in tiers)


def depths(lengths: Sequence[Any], tiers: Sequence[str]) -> dict[str, int]:
    """Messages waiting per tier, from the replies of ``queue_depths``."""
    out: dict[str, int] = {}
    at = 0
    for t in tiers:
        n = keys.list_count(t)
        out[t] = sum(lengths[at : at + n])
        at += n
    return out


def parse_snapshot(
    lengths: list[int], raw_registry: dict[str, str], estimates: dict[str, str], now: float, stale_s: float
) -> PoolSnapshot:
    """Turn the raw replies of ``read_pool`` into a snapshot (pure, for tests)."""
    queued = {Tier(t): n for t, n in depths(lengths, AHEAD).items()}
    replicas = slots = inflight = 0
    for entry in registry.parse_all(raw_registry).values():
        if not entry.serving(now, stale_s):
            continue  # dead, stuck or leaving: its slots take no new work
        replicas += 1
        slots += entry.concurrency
        inflight += entry.inflight
    return PoolSnapshot(
        queued, replicas, slots, inflight, {k: float(v) for k, v in estimates.items()}, now
    )


def read_pool(client: Redis, pool: str, stale_s: float) -> PoolSnapshot:
    pipe = client.pipeline(transaction=False)
    queue_depths(pipe, pool, AHEAD)
    pipe.hgetall(keys.replicas(pool))
    pipe.hgetall(keys.estimates(pool))
    *lengths, raw_registry, estimates = pipe.execute()
    return parse_snapshot(lengths, raw_registry, estimates, time.time(), stale_s)


class Observer:
    """Caches one snapshot per pool for ``ttl_s`` so a burst of publishes costs one read.

    While Redis is away (restarting) it routes from the last snapshot it has, or from an
    empty one (no live replica: nothing is safe), so a publish waits in kombu's retries
    for Redis to return instead of failing in the router."""

    def __init__(self, client: Redis, ttl_s: float, stale_s: float) -> None:
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
        try:
            snap = read_pool(self._client, pool, self._stale)
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            return hit[1] if hit is not None else PoolSnapshot({}, 0, 0, 0, {}, time.time())
        with self._lock:
            self._cache[pool] = (now, snap)
        return snap

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()
