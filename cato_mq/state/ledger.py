"""What a node's end writes to Redis, in one script call (one command per hop).

A finished node, in one atomic step: mark the node done (redelivery dedupe), append its
record (and the final result, for the last node) to the request's stream, fold its
observed times into the pool's EWMA estimates, and count it in the current violation
window and in Prometheus' counters (``state.outcomes``). A failed node: append ``err``
with the node and the reason, and count it.

Both are fenced: each delivery of a node's message gets an attempt number (the
transport's pop script counts deliveries in ``keys.attempt``), and an outcome is written
only while its attempt is the latest. A worker paused past the visibility timeout, whose
node was meanwhile redelivered, can therefore neither fail the request nor count a
failure while the redelivered copy may still succeed. Attempt 0 (no counter: a message
published without a task id) is never fenced. Both scripts may run with Redis at
``maxmemory`` (``state.scripts``): they finish work the fleet already holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis
from redis.client import Pipeline

from cato_mq.policy.estimates import EWMA_ALPHA
from cato_mq.state import keys, outcomes, scripts
from cato_mq.state.estimates import ESTIMATE_TTL_S

#: Refuse the write if a later delivery than ARGV[attempt] is counted in KEYS[attempt]. A
#: counter Redis forgot (restarted without persistence) fences nothing: the node in
#: flight is then the only one left to finish the request.
_FENCE = "local latest = redis.call('GET', {k})\nif {a} ~= '0' and latest and latest ~= {a} then return 0 end\n"
_FINISH_LUA = _FENCE.format(a="ARGV[10]", k="KEYS[5]") + """
-- KEYS: done, stream, estimates, window, attempt, nodes, requests, ttft, e2e, outcome
-- ARGV: ttl, index, record, result, alpha, est_ttl, window_ttl, node_miss, request_miss, attempt,
--       node field, series, outcome, ttft bucket, ttft, e2e bucket, e2e, name, value, ...
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end  -- recorded already: a retried write
redis.call('SET', KEYS[1], 1, 'EX', ARGV[1])
-- Prometheus' counters (state.outcomes): the node once, the request's outcome once
if ARGV[11] ~= '' then redis.call('HINCRBY', KEYS[6], ARGV[11], 1) end
if ARGV[12] ~= '' and redis.call('SET', KEYS[10], ARGV[13], 'NX', 'EX', ARGV[1]) then
  redis.call('HINCRBY', KEYS[7], ARGV[12] .. '|' .. ARGV[13], 1)
  for h = 0, 1 do
    local b = ARGV[14 + 2 * h]
    if b ~= '' then
      redis.call('HINCRBY', KEYS[8 + h], ARGV[12] .. '|' .. b, 1)
      redis.call('HINCRBYFLOAT', KEYS[8 + h], ARGV[12] .. '|sum', ARGV[15 + 2 * h])
    end
  end
end
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
for i = 18, #ARGV, 2 do
  local v = tonumber(ARGV[i + 1])
  local old = redis.call('HGET', KEYS[3], ARGV[i])
  if old then v = tonumber(old) + alpha * (v - tonumber(old)) end
  redis.call('HSET', KEYS[3], ARGV[i], tostring(v))
end
redis.call('EXPIRE', KEYS[3], ARGV[6])
return 1
"""
_FAIL_LUA = _FENCE.format(a="ARGV[3]", k="KEYS[2]") + """
-- KEYS: stream, attempt, window, requests, outcome; ARGV: ttl, reason, attempt, window_ttl, count, series
redis.call('XADD', KEYS[1], '*', 't', 'err', 'd', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[1])
if ARGV[5] == '1' then
  redis.call('HINCRBY', KEYS[3], 'failed', 1)
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
if ARGV[6] ~= '' and redis.call('SET', KEYS[5], 'failed', 'NX', 'EX', ARGV[1]) then
  redis.call('HINCRBY', KEYS[4], ARGV[6] .. '|failed', 1)
end
return 1
"""
#: KEYS: cancel marker, window, cancelled counts, requests, outcome; ARGV: pool, window ttl,
#: counts ttl, series, ttl. Counts a cancelled request once, by the first worker that stopped
#: a node of it; Prometheus' counter too, unless another outcome of it was counted first.
_CANCELLED_LUA = """
if redis.call('GET', KEYS[1]) ~= '1' then return 0 end
redis.call('SET', KEYS[1], '2', 'KEEPTTL')
if ARGV[4] ~= '' and redis.call('SET', KEYS[5], 'cancelled', 'NX', 'EX', ARGV[5]) then
  redis.call('HINCRBY', KEYS[4], ARGV[4] .. '|cancelled', 1)
end
redis.call('HINCRBY', KEYS[2], 'cancelled', 1)
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
redis.call('EXPIRE', KEYS[3], ARGV[3])
return 1
"""
#: The cancelled counts outlive the last cancellation by this long (as dead letter counts).
CANCELLED_COUNTS_TTL_S = 30 * 86_400


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
    #: the node's task id and its delivery's attempt (the fencing token; 0: not fenced)
    task_id: str = ""
    attempt: int = 0
    #: what Prometheus counts (``state.outcomes``): the node by step and the tier it was
    #: served from (empty: not counted); on the last node, the request by kind and latency
    step: str = ""
    tier: str = ""
    kind: str = ""
    ttft_s: float | None = None
    e2e_s: float | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """A request that failed: ``reason`` reaches the client as its ``err`` event."""

    request_id: str
    reason: str
    #: the failed node's pool: its window counts the failure (None: not a capacity
    #: failure, e.g. a dead letter's request)
    pool: str | None = None
    task_id: str = ""
    attempt: int = 0
    #: the request's kind: with ``pool``, its ``failed`` outcome is counted (empty: not)
    kind: str = ""


class Ledger:
    """Writes node outcomes: one at a time (the last node of a request, before its ack, or
    a failure), or many in one pipeline (the replica's outbox)."""

    def __init__(self, client: redis.Redis[str], result_ttl_s: int, window_s: float) -> None:
        self._client = client
        self._ttl = result_ttl_s
        self._window_s = window_s
        self._shas = self._load()

    def _load(self) -> dict[str, str]:
        return {"finish": scripts.load(self._client, _FINISH_LUA), "fail": scripts.load(self._client, _FAIL_LUA),
                "cancelled": scripts.load(self._client, _CANCELLED_LUA)}

    def window_key(self, pool: str, now: float) -> str:
        return keys.window(pool, int(now // self._window_s * self._window_s))

    def _window_ttl(self) -> int:
        return int(self._window_s * 360)

    def _finish_args(self, f: Finished, now: float) -> list[str | int | float]:
        args: list[str | int | float] = [
            self._ttl, f.index, f.record_json, f.result_json or "", EWMA_ALPHA, ESTIMATE_TTL_S,
            self._window_ttl(), int(f.node_missed), int(f.request_missed), f.attempt, *_counted(f),
        ]
        for name, value in f.observed.items():
            args += [name, repr(float(value))]
        return [10, keys.node_done(f.request_id, f.index), keys.stream(f.request_id),
                keys.estimates(f.pool), self.window_key(f.pool, now), keys.attempt(f.task_id),
                keys.counter("nodes"), keys.counter("requests"), keys.counter("ttft"), keys.counter("e2e"),
                keys.outcome(f.request_id), *args]

    def _fail_args(self, f: Failed, now: float) -> list[str | int | float]:
        window = self.window_key(f.pool, now) if f.pool else keys.stream(f.request_id)
        series = outcomes.field(f.pool, f.kind) if f.pool and f.kind else ""
        return [5, keys.stream(f.request_id), keys.attempt(f.task_id), window, keys.counter("requests"),
                keys.outcome(f.request_id), self._ttl, f.reason, f.attempt, self._window_ttl(),
                int(f.pool is not None), series]

    def finish(self, f: Finished, now: float) -> bool:
        """Record one node; False if a later delivery of it owns the outcome (refused)."""
        return _flag(self.write([(f, now)], [])[0])

    def fail(self, f: Failed, now: float) -> bool:
        """Write the request's ``err`` (and count it in the pool's window, once); False if
        a later delivery of the node owns its outcome."""
        return _flag(self.write([], [(f, now)])[0])

    def cancelled(self, request_id: str, pool: str, now: float, kind: str = "") -> bool:
        """Count a cancelled request (``state.cancel``) in its pool's window and counts, once,
        and, with its ``kind``, in Prometheus' requests counter; False if counted before."""
        series = outcomes.field(pool, kind) if kind else ""
        args = [5, keys.cancel(request_id), self.window_key(pool, now), keys.cancelled_counts(),
                keys.counter("requests"), keys.outcome(request_id),
                pool, self._window_ttl(), CANCELLED_COUNTS_TTL_S, series, self._ttl]
        try:
            return bool(self._client.evalsha(self._shas["cancelled"], *args))  # type: ignore[no-untyped-call]
        except redis.exceptions.NoScriptError:
            self._shas = self._load()
            return bool(self._client.evalsha(self._shas["cancelled"], *args))  # type: ignore[no-untyped-call]

    def write(
        self, finished: Sequence[tuple[Finished, float]], failed: Sequence[tuple[Failed, float]],
        pipe: Pipeline[str] | None = None,
    ) -> list[object]:
        """Queue the outcomes on ``pipe`` (after whatever it carries), execute it, and return
        every command's reply: for ours True (written) or False (refused as a stale
        attempt), for any command an exception if it failed. A connection error raises."""
        pipe = pipe if pipe is not None else self._client.pipeline(transaction=False)
        first = len(pipe.command_stack)
        commands = [("finish", self._finish_args(f, now)) for f, now in finished]
        commands += [("fail", self._fail_args(f, now)) for f, now in failed]
        for script, args in commands:
            pipe.evalsha(self._shas[script], *args)
        replies: list[object] = pipe.execute(raise_on_error=False)
        lost = [i for i, reply in enumerate(replies[first:]) if isinstance(reply, redis.exceptions.NoScriptError)]
        if lost:  # Redis restarted or its scripts were flushed: load ours again, once
            self._shas = self._load()
            again = self._client.pipeline(transaction=False)
            for i in lost:
                script, args = commands[i]
                again.evalsha(self._shas[script], *args)
            for i, reply in zip(lost, again.execute(raise_on_error=False), strict=True):
                replies[first + i] = reply
        return [*replies[:first], *(r if isinstance(r, Exception) else bool(r) for r in replies[first:])]


def _counted(f: Finished) -> list[str]:
    """The finish script's counter arguments: node field, request series, outcome, and a
    (bucket, value) pair per histogram ('' where nothing is counted)."""
    node = outcomes.field(f.pool, f.step, f.tier) if f.step and f.tier else ""
    if f.result_json is None or not f.kind:
        return [node, "", "", "", "", "", ""]
    ttft = ("", "") if f.ttft_s is None else (outcomes.bucket(f.ttft_s, outcomes.TTFT_BUCKETS), repr(f.ttft_s))
    e2e = ("", "") if f.e2e_s is None else (outcomes.bucket(f.e2e_s, outcomes.E2E_BUCKETS), repr(f.e2e_s))
    outcome = "missed" if f.request_missed else "met"
    return [node, outcomes.field(f.pool, f.kind), outcome, *ttft, *e2e]


def _flag(reply: object) -> bool:
    if isinstance(reply, Exception):
        raise reply
    return bool(reply)
