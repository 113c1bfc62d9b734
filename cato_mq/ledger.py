"""What a finished node writes to Redis, in one script call (one command per hop).

In one atomic step: mark the node done (redelivery dedupe), append its record (and the
final result, for the last node) to the request's stream, fold its observed times into
the pool's EWMA estimates, and count it in the current violation window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import redis

from cato_mq import keys
from cato_mq.slack import EWMA_ALPHA

#: Estimates outlive the last update by a day, then a restarted fleet re-seeds them.
ESTIMATE_TTL_S = 86_400

_FINISH_LUA = """
-- KEYS: done, stream, estimates, window
-- ARGV: ttl, index, record, result, alpha, est_ttl, window_ttl, node_miss, request_miss, name, value, ...
redis.call('SET', KEYS[1], 1, 'EX', ARGV[1])
redis.call('XADD', KEYS[2], '*', 't', 'node', 'n', ARGV[2], 'd', ARGV[3])
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
    def __init__(self, client: redis.Redis[str], result_ttl_s: int, window_s: float) -> None:
        self._script = client.register_script(_FINISH_LUA)
        self._ttl = result_ttl_s
        self._window_s = window_s

    def window_key(self, pool: str, now: float) -> str:
        return keys.window(pool, int(now // self._window_s * self._window_s))

    def finish(self, f: Finished, now: float) -> None:
        args: list[str | int | float] = [
            self._ttl, f.index, f.record_json, f.result_json or "", EWMA_ALPHA, ESTIMATE_TTL_S,
            int(self._window_s * 360), int(f.node_missed), int(f.request_missed),
        ]
        for name, value in f.observed.items():
            args += [name, repr(float(value))]
        self._script(
            keys=[keys.node_done(f.request_id, f.index), keys.stream(f.request_id),
                  keys.estimates(f.pool), self.window_key(f.pool, now)],
            args=args,
        )
