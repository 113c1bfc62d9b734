"""What a finished node writes to Redis, in one script call (one command per hop).

In one atomic step: mark the node done (redelivery dedupe), append its record (and the
final result, for the last node) to the request's stream, fold its observed times into
the pool's EWMA estimates, and count it in the current violation window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis
from redis.client import Pipeline

from cato_mq import keys
from cato_mq.slack import EWMA_ALPHA

#: Estimates outlive the last update by a day, then a restarted fleet re-seeds them.
ESTIMATE_TTL_S = 86_400

_FINISH_LUA = """
-- KEYS: done, stream, estimates, window
-- ARGV: ttl, index, record, result, alpha, est_ttl, window_ttl, node_miss, request_miss, name, value, ...
redis.call('SET', KEYS[1], 1, 'EX', ARGV[1])
redis.call('XADD', KEYS[2], '*', 't', 'node', 'n', ARGV[2], 'd', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[1])
if ARGV[4] ~= '' then
  redis.call('XADD', KEYS[2], '*', 't', 'end', 'd', ARGV[4])
  redis.call('HINCRBY', KEYS[4], 'requests', 1)
  if ARGV[9] == '1' then redis.call('HINCRBY', KEYS[4], 'request_violations', 1) end
end
redis.call('HINCRBY', KEYS[4], 'nodes', 1)
if ARGV[8] == '1' then redis.call('HINCRBY', KEYS[4], 'node_violations', 1) end
redis.call('EXPIRE', KEYS[4], ARGV[7])
local alpha = tonumber(ARGV[5])
for i = 10, #ARGV, 2 do
  local v = tonumber(ARGV[i + 1])
  local old = redis.call('HGET', KEYS[3], ARGV[i])
  if old then v = tonumber(old) + alpha * (v - tonumber(old)) end
  redis.call('HSET', KEYS[3], ARGV[i], tostring(v))
end
redis.call('EXPIRE', KEYS[3], ARGV[6])
return 1
"""


@dataclass(frozen=True, slots=True)
class Finished:
    request_id: str
    pool: str
    index: int
    record_json: str
    result_json: str | None  # set on the last node
    node_missed: bool
    request_missed: bool
    observed: Mapping[str, float]


class Ledger:
    """Writes finished nodes: one at a time (the last node of a request, before its ack),
    or many in one pipeline (intermediate nodes, from the replica's writer thread)."""

    def __init__(self, client: redis.Redis[str], result_ttl_s: int, window_s: float) -> None:
        self._client = client
        self._ttl = result_ttl_s
        self._window_s = window_s
        self._sha = self._load()

    def _load(self) -> str:
        return str(self._client.execute_command("SCRIPT", "LOAD", _FINISH_LUA))

    def window_key(self, pool: str, now: float) -> str:
        return keys.window(pool, int(now // self._window_s * self._window_s))

    def _command(self, f: Finished, now: float) -> list[str | int | float]:
        args: list[str | int | float] = [
            self._ttl, f.index, f.record_json, f.result_json or "", EWMA_ALPHA, ESTIMATE_TTL_S,
            int(self._window_s * 360), int(f.node_missed), int(f.request_missed),
        ]
        for name, value in f.observed.items():
            args += [name, repr(float(value))]
        return [keys.node_done(f.request_id, f.index), keys.stream(f.request_id),
                keys.estimates(f.pool), self.window_key(f.pool, now), *args]

    def finish(self, f: Finished, now: float) -> None:
        self.finish_many([(f, now)])

    def finish_many(self, items: Sequence[tuple[Finished, float]], pipe: Pipeline[str] | None = None) -> None:
        """Queue the items on ``pipe`` (which may carry other writes) and execute it."""
        pipe = pipe if pipe is not None else self._client.pipeline(transaction=False)
        first = len(pipe.command_stack)
        for f, now in items:
            pipe.evalsha(self._sha, 4, *self._command(f, now))
        replies = pipe.execute(raise_on_error=False)
        lost = [item for item, reply in zip(items, replies[first:], strict=True)
                if isinstance(reply, redis.exceptions.NoScriptError)]
        if lost:  # Redis restarted or its scripts were flushed: load ours again, once
            self._sha = self._load()
            self.finish_many(lost)
        failed = [r for r in replies if isinstance(r, Exception) and not isinstance(r, redis.exceptions.NoScriptError)]
        if failed:
            raise failed[0]
