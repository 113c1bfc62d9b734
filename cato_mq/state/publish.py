"""The publish script of cato-mq's transport: push, ring, epoch, and the backlog bound.

Every publish pushes the message and rings its queue's doorbell in one script (see
``transport``), marks a request known with its first node's publish (``keys.request``),
and returns the broker's epoch (``keys.epoch``). A ``submit`` may also
carry a **backlog bound**: the script first counts what waits on the pool's tier queues
and, over the bound, pushes nothing and says so. Count and push are one script, so two
clients racing for the last place cannot both get it, and a refused request leaves
nothing in Redis. Only a request's first node is bounded: the next links of a request
already admitted are published by workers and never refused (that would fail it
half-way).

The bound travels from ``client.submit`` to ``Channel._put`` in a thread-local
(``bounded``): Celery publishes a chain's first message on the calling thread, and its
publish retries (a Redis restart) stay inside the ``with`` block.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

#: Doorbell tokens kept per queue while nobody waits on it, and how long they live.
BELL_CAP = 100
BELL_TTL_S = 60
#: The broker's epoch outlives the last publish by this long.
EPOCH_TTL_S = 30 * 86_400

PUT = """
-- KEYS: list, bell, epoch, [the request marker,] then the lists the bound counts
-- ARGV: message, bell cap, bell ttl, new epoch, epoch ttl, marker ttl, bound (0: none),
-- 1 if KEYS[4] is the request marker (a request's first node) else 0, push (LPUSH: behind
-- the queued messages; RPUSH: at the head, the next one popped)
local first_counted = 4 + tonumber(ARGV[8])
local bound = tonumber(ARGV[7])
if bound > 0 then
  local queued = 0
  for i = first_counted, #KEYS do queued = queued + redis.call('LLEN', KEYS[i]) end
  if queued >= bound then return {queued} end
end
redis.call(ARGV[9], KEYS[1], ARGV[1])
if ARGV[8] == '1' then redis.call('SET', KEYS[4], '1', 'EX', ARGV[6]) end
redis.call('LPUSH', KEYS[2], '1')
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
redis.call('EXPIRE', KEYS[2], ARGV[3])
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[4]
  redis.call('SET', KEYS[3], epoch)
end
redis.call('EXPIRE', KEYS[3], ARGV[5])
return epoch
"""


@dataclass(frozen=True)
class Bound:
    """At most ``limit`` messages may wait on ``lists`` (a pool's tier queues) when this
    publish is counted; ``limit`` 0 bounds nothing."""

    lists: tuple[str, ...]
    limit: int


class BacklogFull(Exception):
    """The publish was refused whole: ``queued`` messages wait, the bound is ``limit``."""

    def __init__(self, queue: str, queued: int, limit: int) -> None:
        super().__init__(f"{queued} nodes wait on {queue.rpartition('.')[0]}'s queues; the bound is {limit}")
        self.queue = queue
        self.queued = queued
        self.limit = limit


_local = threading.local()


@contextlib.contextmanager
def bounded(lists: Sequence[str], limit: int) -> Iterator[None]:
    """Publishes on this thread inside the block are refused (``BacklogFull``) when
    ``lists`` hold ``limit`` messages or more."""
    _local.bound = Bound(tuple(lists), limit)
    try:
        yield
    finally:
        _local.bound = None


def current_bound() -> Bound | None:
    return getattr(_local, "bound", None)


def set_epoch(epoch: str) -> None:
    _local.epoch = epoch


def published_epoch() -> str | None:
    """The broker epoch that this thread's last publish went into (see ``keys.epoch``)."""
    return getattr(_local, "epoch", None)
