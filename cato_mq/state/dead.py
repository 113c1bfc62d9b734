"""Dead letters: what sat on a cato queue and no worker can run, kept for a person to read.

A message that is not a well-formed node message (bytes that are not JSON, a broken
envelope, a body of the wrong shape or content type, an unknown task, a state that fails
validation, a message over the size limit) is *buried*: appended to the ``keys.dead()``
stream with its kind, a one-line reason, the queue and Redis list it came from, the time,
the request it belonged to (when that can be read) and the raw message, and counted per
kind in ``keys.dead_counts()`` for a metrics exporter. The worker goes on.

A stream rather than a list: entries get ids (``cato-mq dead --requeue ID``), their fields
are binary-safe (the raw bytes of an undecodable item survive), and ``MAXLEN`` bounds it.
Burying happens in one script, which also takes the message off kombu's unacked set, so a
buried message is never redelivered. The transport's pop script buries in place what it
cannot even hand to Python (``BURY_FUNCTION``); everything else goes through ``bury``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cato_mq.state import keys, scripts

#: Dead letters kept; older ones are trimmed (Redis may keep a few more: ``MAXLEN ~``).
MAXLEN = 10_000
#: The dead letters and the per-kind counters outlive the last burial by this long.
COUNT_TTL_S = 30 * 86_400
#: Kinds of poison, for the counters' fields and the docs.
KINDS = ("undecodable", "envelope", "content_type", "shape", "unknown_task", "invalid_state", "oversize")

#: ``bury(dead, counts, kind, reason, queue, list, at, request, raw)``: shared with the
#: transport's pop script, so the entry's format has this one writer.
BURY_FUNCTION = f"""
local function bury(dead, counts, kind, reason, queue, list, at, request, raw)
  redis.call('XADD', dead, 'MAXLEN', '~', {MAXLEN}, '*', 'kind', kind, 'reason', reason,
             'queue', queue, 'list', list, 'at', at, 'request', request, 'raw', raw)
  redis.call('EXPIRE', dead, {COUNT_TTL_S})
  redis.call('HINCRBY', counts, kind, 1)
  redis.call('EXPIRE', counts, {COUNT_TTL_S})
end
"""
_BURY = BURY_FUNCTION + """
-- KEYS: dead, counts, unacked, unacked index; ARGV: kind, reason, queue, list, at, request, raw, tag
bury(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
if ARGV[8] ~= '' then
  redis.call('HDEL', KEYS[3], ARGV[8])
  redis.call('ZREM', KEYS[4], ARGV[8])
end
return 1
"""
_REQUEUE = """
-- KEYS: dead; ARGV: id, bell prefix. Puts the raw message back at the head of its list.
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return 0 end
local f = {}
local flat = found[1][2]
for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
if (f['raw'] or '') == '' then return -1 end
local list = f['list'] ~= '' and f['list'] or f['queue']
redis.call('RPUSH', list, f['raw'])
redis.call('LPUSH', ARGV[2] .. f['queue'], '1')
redis.call('EXPIRE', ARGV[2] .. f['queue'], 60)
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"""


_STREAM_ID = re.compile(r"\d+-\d+")


class Poison(Exception):
    """A message no worker can run; ``kind`` is one of ``KINDS``."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason

    def __reduce__(self) -> tuple[type[Poison], tuple[str, str]]:  # Celery pickles what a task raises
        return (Poison, (self.kind, self.reason))


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    kind: str
    reason: str
    queue: str
    list: str
    at: float
    request: str
    raw: bytes


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _letter(entry_id: Any, fields: Mapping[Any, Any]) -> DeadLetter:
    f = {_text(k): v for k, v in fields.items()}
    raw = f.get("raw", b"")
    return DeadLetter(
        id=_text(entry_id), kind=_text(f.get("kind", "")), reason=_text(f.get("reason", "")),
        queue=_text(f.get("queue", "")), list=_text(f.get("list", "")), at=float(_text(f.get("at", "0"))),
        request=_text(f.get("request", "")), raw=raw if isinstance(raw, bytes) else str(raw).encode(),
    )


class DeadLetters:
    """Bury, list and requeue. ``client`` may decode responses or not; raw bytes survive
    only with a client that does not (``cato-mq dead`` uses one)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._bury = client.register_script(scripts.body(client, _BURY))
        self._requeue = client.register_script(_REQUEUE)

    def bury(
        self, kind: str, reason: str, queue: str, raw: bytes | str, *, list_key: str = "", request: str = "",
        tag: str = "", pipe: Any = None,
    ) -> None:
        """Record one dead letter (and drop delivery ``tag`` from the unacked set)."""
        args = [kind, reason[:1000], queue, list_key, f"{time.time():.3f}", request, raw, tag]
        self._bury(keys=[keys.dead(), keys.dead_counts(), keys.UNACKED, keys.UNACKED_INDEX], args=args,
                   client=pipe if pipe is not None else self._client)

    def delivered(self, tag: str) -> bytes:
        """The raw message of an unacked delivery (empty if it is no longer unacked)."""
        wrapped = self._client.hget(keys.UNACKED, tag)
        if not wrapped:
            return b""
        message, _exchange, _routing_key = json.loads(wrapped)
        return json.dumps(message).encode()

    def entries(self, count: int = 100) -> list[DeadLetter]:
        """The newest ``count`` dead letters, newest first."""
        return [_letter(i, f) for i, f in self._client.xrevrange(keys.dead(), count=count)]

    def counts(self) -> dict[str, int]:
        return {_text(k): int(v) for k, v in self._client.hgetall(keys.dead_counts()).items()}

    def requeue(self, entry_id: str) -> None:
        """Put dead letter ``entry_id`` back where it was popped from, at the head."""
        if not _STREAM_ID.fullmatch(entry_id):
            raise ValueError(f"{entry_id!r} is not a dead letter id (they look like 1763930000000-0)")
        done = self._requeue(keys=[keys.dead()], args=[entry_id, keys.bell("")])
        if done == 0:
            raise ValueError(f"no dead letter {entry_id!r}")
        if done == -1:
            raise ValueError(f"dead letter {entry_id!r} has no message to requeue (it was no longer unacked)")
