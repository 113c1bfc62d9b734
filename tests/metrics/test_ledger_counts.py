"""The ledger's scripts count each node once and each request's outcome once, against real
Redis: a retried write, a stale delivery and a late failure add nothing."""

from __future__ import annotations

import redis

from cato_mq.state import keys
from cato_mq.state.ledger import Failed, Finished, Ledger


def last_node(rid: str, attempt: int = 1, e2e: float = 0.7) -> Finished:
    return Finished(rid, "default", 1, "{}", "{}", False, True, {}, task_id=f"{rid}-1-llm", attempt=attempt,
                    step="llm", tier="at_risk", kind="summarization", ttft_s=None, e2e_s=e2e)


def test_a_node_and_its_request_count_once(rds: redis.Redis) -> None:
    ledger = Ledger(rds, result_ttl_s=100, window_s=10)
    rds.set(keys.attempt("r1-1-llm"), 2)  # the message was delivered twice: attempt 2 owns it
    assert not ledger.finish(last_node("r1", attempt=1), now=10.0)  # the stale delivery: refused
    assert ledger.finish(last_node("r1", attempt=2), now=10.0)
    assert ledger.finish(last_node("r1", attempt=2), now=10.0)  # the outbox retried its write
    # the request's node failing afterwards (a duplicate that crashed) changes no outcome
    assert ledger.fail(Failed("r1", "boom", pool="default", task_id="r1-1-llm", attempt=2, kind="summarization"),
                       now=11.0)
    assert rds.hgetall(keys.counter("nodes")) == {"default|llm|at_risk": "1"}
    assert rds.hgetall(keys.counter("requests")) == {"default|summarization|missed": "1"}
    e2e = rds.hgetall(keys.counter("e2e"))
    assert e2e.pop("default|summarization|0.8") == "1"  # 0.7 s: the bucket of le 0.8, and none below
    assert float(e2e.pop("default|summarization|sum")) == 0.7
    assert e2e == {}
    assert rds.hgetall(keys.counter("ttft")) == {}  # no first token: no TTFT observation


def test_a_failure_counts_once_and_only_with_its_kind(rds: redis.Redis) -> None:
    ledger = Ledger(rds, result_ttl_s=100, window_s=10)
    ledger.fail(Failed("r2", "boom", pool="default", kind="generation"), now=1.0)
    ledger.fail(Failed("r2", "again", pool="default", kind="generation"), now=1.0)
    ledger.fail(Failed("r3", "a dead letter's request"), now=1.0)  # no pool, no kind: not a request outcome
    assert rds.hgetall(keys.counter("requests")) == {"default|generation|failed": "1"}
    rds.set(keys.cancel("r2"), "1")  # cancelled after it failed: it stays failed
    assert ledger.cancelled("r2", "default", now=1.0, kind="generation")
    assert rds.hgetall(keys.counter("requests")) == {"default|generation|failed": "1"}


def test_a_cancel_counts_once_and_never_over_an_earlier_outcome(rds: redis.Redis) -> None:
    ledger = Ledger(rds, result_ttl_s=100, window_s=10)
    rds.set(keys.cancel("r4"), "1")  # a client cancelled it: two workers stop a node of it
    assert ledger.cancelled("r4", "default", now=1.0, kind="completion")
    assert not ledger.cancelled("r4", "default", now=1.0, kind="completion")
    assert ledger.finish(last_node("r5"), now=2.0)  # r5 finished (missed), then was cancelled
    rds.set(keys.cancel("r5"), "1")
    ledger.cancelled("r5", "default", now=3.0, kind="summarization")
    assert rds.hgetall(keys.counter("requests")) == {
        "default|completion|cancelled": "1", "default|summarization|missed": "1"}
