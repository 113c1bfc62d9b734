"""The fleet as Redis holds it: live agents, their devices, the replica on each device, and
the timeline of replica state changes. Shared by the agents (writers), the provisioner
tick and ``cato-mq fleet`` (readers).

A device is allocated by its lease key (``keys.lease``), set with ``SET NX PX`` by the
provisioner and renewed by the host's agent; the agent's record says what the replica on
it is doing. A lease without a record entry is a replica ``requested`` but not started.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

import redis

from cato_mq.state import keys
from cato_mq.state.registry import Entry

if TYPE_CHECKING:  # types-redis makes clients generic in their reply type
    Redis: TypeAlias = redis.Redis[str]
    Pipeline: TypeAlias = redis.client.Pipeline[str]
else:
    Redis, Pipeline = redis.Redis, redis.client.Pipeline

#: Replica life cycle, in order; ``gone`` is only ever in the timeline.
STATES = ("requested", "starting", "ready", "draining", "gone")
#: The timeline keeps about this many changes, and lives a day after the last one.
TIMELINE_MAX = 100_000
TIMELINE_TTL_S = 86_400

# delete a key only if it still holds the value we set (leases, locks)
RELEASE_LUA = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


@dataclass(frozen=True, slots=True)
class ReplicaRecord:
    name: str
    pool: str
    host: str
    device: str
    state: str
    since: float  # wall time of the last state change (requested: the order's time)


@dataclass(frozen=True, slots=True)
class AgentView:
    host: str
    devices: tuple[str, ...]
    engine: str
    beat: float
    replicas: dict[str, ReplicaRecord] = field(default_factory=dict)  # device -> replica

    @property
    def free(self) -> list[str]:
        return [d for d in self.devices if d not in self.replicas]


@dataclass(frozen=True, slots=True)
class FleetView:
    agents: dict[str, AgentView]

    def replicas(self, pool: str | None = None) -> list[ReplicaRecord]:
        return [r for a in self.agents.values() for r in a.replicas.values() if pool in (None, r.pool)]

    @property
    def free_devices(self) -> int:
        return sum(len(a.free) for a in self.agents.values())


def worker_name(pool: str, engine: str, device: str, host: str) -> str:
    """Celery node name of a replica: the worker names itself so, the agent addresses it so."""
    return f"{pool}-{engine}-d{device}@{host}"


def lease_value(pool: str, name: str, at: float) -> str:
    return f"{pool} {name} {at:.3f}"


def parse_lease(value: str) -> tuple[str, str, float]:
    pool, name, at = value.split()
    return pool, name, float(at)


def record_value(r: ReplicaRecord) -> str:
    return f"{r.pool} {r.state} {r.name} {r.since:.3f}"


def read(client: Redis) -> FleetView:
    """Live agents (record not expired) with the replica on each leased device."""
    hosts = list(client.zrange(keys.agents(), 0, -1))
    pipe = client.pipeline(transaction=False)
    for host in hosts:
        pipe.hgetall(keys.agent(host))
    records: list[dict[str, str]] = pipe.execute()
    live = [(h, r) for h, r in zip(hosts, records, strict=True) if r.get("devices") is not None]
    dead = [h for h, r in zip(hosts, records, strict=True) if r.get("devices") is None]
    if dead:  # their records expired with their leases: forget them
        client.zrem(keys.agents(), *dead)
    pipe = client.pipeline(transaction=False)
    for host, rec in live:
        for device in _devices(rec):
            pipe.get(keys.lease(host, device))
    leases = iter(pipe.execute())
    agents: dict[str, AgentView] = {}
    for host, rec in live:
        replicas: dict[str, ReplicaRecord] = {}
        for device in _devices(rec):
            lease = next(leases)
            if lease is None:
                continue  # free, even if the agent's record still lingers for a beat
            pool, name, at = parse_lease(lease)
            entry = rec.get(f"dev:{device}")
            state, since = "requested", at
            if entry:
                _, state, rec_name, since_s = entry.split()
                if rec_name != name:
                    state, since = "requested", at  # the record is of the previous replica
                else:
                    since = float(since_s)
            replicas[device] = ReplicaRecord(name, pool, host, device, state, since)
        engine, beat = rec.get("engine", "sim"), float(rec.get("beat", 0))
        agents[host] = AgentView(host, _devices(rec), engine, beat, replicas)
    return FleetView(agents)


def _devices(rec: dict[str, str]) -> tuple[str, ...]:
    return tuple(d for d in rec.get("devices", "").split(",") if d)


def log_state(pipe: Pipeline, r: ReplicaRecord, at: float | None = None) -> None:
    """Append one state change to the timeline (queued on ``pipe``)."""
    fields = {"at": f"{at if at is not None else time.time():.3f}", "replica": r.name, "pool": r.pool,
              "host": r.host, "device": r.device, "state": r.state}
    pipe.xadd(keys.timeline(), fields, maxlen=TIMELINE_MAX, approximate=True)  # type: ignore[arg-type,unused-ignore]
    pipe.expire(keys.timeline(), TIMELINE_TTL_S)


def timeline(client: Redis, since: float = 0.0) -> list[dict[str, str]]:
    """Every recorded state change at or after ``since`` (wall), oldest first."""
    start = f"{int(since * 1000)}-0" if since > 0 else "-"
    return [f for _, f in client.xrange(keys.timeline(), min=start)]


def table(view: FleetView, entries: dict[str, Entry]) -> str:
    """The fleet as a fixed-width table (``cato-mq fleet``); ``entries``: the replica registry."""
    rows = [("HOST", "DEVICE", "POOL", "REPLICA", "STATE", "FOR", "INFLIGHT")]
    now = time.time()
    for host in sorted(view.agents):
        agent = view.agents[host]
        for device in agent.devices:
            r = agent.replicas.get(device)
            if r is None:
                rows.append((host, device, "-", "-", "free", "-", "-"))
                continue
            entry = entries.get(r.name)
            inflight = "-" if entry is None else str(entry.inflight)
            rows.append((host, device, r.pool, r.name, r.state, f"{now - r.since:.0f}s", inflight))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)
