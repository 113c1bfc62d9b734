"""The replica registry: each live worker's entry in ``keys.replicas(pool)``, its one writer
and its one reader.

An entry is ``"<in flight> <concurrency> <heartbeat wall time> <state> <drift>"`` (drift: the
replica's observed over profiled engine speed, ``workers.speed``). The worker
rewrites it every ``CATO_HEARTBEAT_S`` (``write``); the router's pool snapshot, the
provisioner's observations, the agents and ``cato-mq fleet`` read it (``parse_entry``). An
entry whose heartbeat is older than ``STALE_HEARTBEATS`` periods belongs to a dead or
stuck worker and counts for nothing (``Entry.live``).

Entries expire one by one: Redis 7.0 has no TTL per hash field, so every heartbeat also
removes the pool's entries silent for ``REGISTRY_TTL_BEATS`` (a killed worker's entry is
gone after that long while its pool lives on), and the whole hash expires when every
worker of the pool falls silent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from cato_mq.state import keys

if TYPE_CHECKING:  # types-redis makes clients generic in their reply type
    import redis

    Redis: TypeAlias = redis.Redis[str]
    Pipeline: TypeAlias = redis.client.Pipeline[str]

#: Registry entries older than this many heartbeats belong to dead or stuck workers.
STALE_HEARTBEATS = 3
#: The registry hash outlives a silent fleet by this many heartbeats, then expires.
REGISTRY_TTL_BEATS = 30
#: ``ready`` while consuming; ``draining`` once an agent cancelled its consumers.
STATES = ("ready", "draining")


@dataclass(frozen=True, slots=True)
class Entry:
    inflight: int
    concurrency: int
    beat: float  #: wall time of the last heartbeat
    state: str = "ready"
    #: observed / profiled engine step time (online re-profiling); 1 where nobody measured
    drift: float = 1.0

    def live(self, now: float, stale_s: float) -> bool:
        """The worker beat recently enough to be counted at all."""
        return now - self.beat <= stale_s

    def serving(self, now: float, stale_s: float) -> bool:
        """Live and taking new work: its free slots count for the router."""
        return self.live(now, stale_s) and self.state != "draining"


def stale_after(heartbeat_s: float) -> float:
    """Seconds of silence after which an entry no longer counts."""
    return STALE_HEARTBEATS * heartbeat_s


def format_entry(entry: Entry) -> str:
    return f"{entry.inflight} {entry.concurrency} {entry.beat:.3f} {entry.state} {entry.drift:.4f}"


def parse_entry(text: str) -> Entry:
    """A registry value; entries of older workers say nothing of their state or drift."""
    busy, concurrency, beat, *rest = text.split()
    return Entry(int(busy), int(concurrency), float(beat), rest[0] if rest else "ready",
                 float(rest[1]) if len(rest) > 1 else 1.0)


#: One heartbeat: our entry, the removal of entries silent too long, the hash's TTL.
_BEAT_LUA = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local beat = tonumber(string.match(all[i + 1], '^%S+ %S+ (%S+)'))
  if beat and tonumber(ARGV[3]) - beat > tonumber(ARGV[4]) then redis.call('HDEL', KEYS[1], all[i]) end
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
"""


def write(pipe: Pipeline, pool: str, name: str, entry: Entry, heartbeat_s: float) -> None:
    """Queue one heartbeat on ``pipe``; it also drops the pool's entries that stayed silent
    for ``REGISTRY_TTL_BEATS``, and the hash expires if every worker of the pool does."""
    ttl = max(1.0, REGISTRY_TTL_BEATS * heartbeat_s)
    pipe.eval(_BEAT_LUA, 1, keys.replicas(pool), name, format_entry(entry), f"{entry.beat:.3f}", ttl, int(ttl))


def parse_all(raw: dict[str, str]) -> dict[str, Entry]:
    """A whole pool's registry hash, as ``HGETALL`` returns it."""
    return {name: parse_entry(text) for name, text in raw.items()}


def read(client: Redis, pools: Iterable[str]) -> dict[str, Entry]:
    """Every pool's entries by worker name, in one round trip."""
    pipe = client.pipeline(transaction=False)
    for pool in pools:
        pipe.hgetall(keys.replicas(pool))
    out: dict[str, Entry] = {}
    for raw in pipe.execute():
        out |= parse_all(raw)
    return out


def serving(client: Redis, pool: str, stale_s: float, now: float) -> int:
    """How many replicas of ``pool`` take new work right now."""
    return sum(e.serving(now, stale_s) for e in parse_all(client.hgetall(keys.replicas(pool))).values())
