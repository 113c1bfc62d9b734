"""The faults of the suite: how each row's Redis is configured, what load it gets and what
it does to the fleet while the load runs."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from cato_mq.bench.faults import poison
from cato_mq.bench.faults.fleet import Fleet, wait_frozen
from cato_mq.state import keys


@dataclass(frozen=True)
class Params:
    duration_s: float = 60.0  #: the mixed load's length (4 requests/s)
    rate: float = 4.0
    wait_s: float = 120.0  #: a request with no outcome this long after the load is lost
    stop_s: float = 20.0  #: how long the SIGSTOP row freezes a worker
    burst: int = 400  #: requests at once
    backlog: int = 100  #: ``CATO_MAX_BACKLOG`` of the overload row
    big: int = 1000  #: requests of ``big_chars`` against ``maxmemory``
    big_chars: int = 12_000
    maxmemory: str = "12mb"
    down_s: float = 2.0  #: how long Redis stays down when restarted
    concurrency: int = 4  #: slots per worker
    redis_server: str | None = None  #: the binary; default: ``launch.redis_server_binary()``


#: ``cato-mq bench faults --short``: every row in a few minutes (the CI test).
SHORT = Params(duration_s=8.0, wait_s=60.0, stop_s=8.0, burst=80, backlog=20, big=300, maxmemory="4mb", down_s=1.0)

Inject = Callable[[Fleet, Params], None]


@dataclass(frozen=True)
class Fault:
    name: str
    label: str
    inject: Inject | None = None
    at: float = 0.3  #: when to inject, as a share of the load's length
    load: str = "mix"  #: "mix" (rate x duration), "burst" or "big"
    aof: bool = False
    maxmemory: bool = False
    hooked: bool = False  #: the second worker freezes after its first pop (the pop-window row)
    bounded: bool = False  #: submit under ``CATO_MAX_BACKLOG`` = ``Params.backlog`` (the overload row)


def _sigstop(fleet: Fleet, p: Params) -> None:
    fleet.wait_busy(0, p.duration_s)  # frozen with a node in flight
    fleet.pause(fleet.workers[0], p.stop_s)


def _sigkill(fleet: Fleet, p: Params) -> None:
    fleet.wait_busy(0, p.duration_s)  # killed with a node in flight
    fleet.kill(fleet.workers[0])


def _restart(fleet: Fleet, p: Params) -> None:
    fleet.server.restart(p.down_s)


def _poison(fleet: Fleet, p: Params) -> None:
    client = redis.Redis.from_url(fleet.server.url)
    trap = Path(tempfile.mkdtemp(prefix="cato-faults-")) / "unpickled"
    for i, item in enumerate(poison.items(trap).values()):
        client.lpush(keys.queue_lists("default", ("safe", "violated")[i % 2])[0], item)
    if trap.exists():
        raise AssertionError("a worker unpickled a message")


def _pop_window(fleet: Fleet, p: Params) -> None:
    """Kill the hooked worker while it holds a message it popped and has not delivered."""
    hooked = fleet.workers[1]
    if not wait_frozen(hooked, timeout_s=p.duration_s):
        raise RuntimeError("the hooked worker never took a message")
    fleet.kill(hooked)
    fleet.start_worker()  # a supervisor's restart


FAULTS = (
    Fault("none", "none"),
    Fault("sigstop", "SIGSTOP one worker for {stop_s:g} s", _sigstop),
    Fault("burst", "{burst} requests at once", load="burst"),
    Fault("overload", "{burst} requests at once, CATO_MAX_BACKLOG={backlog}", load="burst", bounded=True),
    Fault("sigkill", "SIGKILL one worker", _sigkill),
    Fault("restart-aof", "Redis restarted, AOF on (everysec), down {down_s:g} s", _restart, at=0.5, aof=True),
    Fault("restart-bare", "Redis restarted without persistence, down {down_s:g} s", _restart, at=0.5),
    Fault("poison", "poison items on the tier queues (9 kinds)", _poison, at=0.25),
    Fault("oom", "{big} requests of {big_chars} chars, maxmemory {maxmemory}", load="big", maxmemory=True),
    Fault("pop-window", "SIGKILL inside the pop window", _pop_window, at=0.0, hooked=True),
)
