"""The backlog bound against real Redis and real workers: ``submit`` refuses a request
whole with ``Overloaded`` once its pool's queues hold ``CATO_MAX_BACKLOG`` nodes, never
refuses the next node of a request it admitted, and admits again once the pool drains."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
import redis

from cato_mq import CodingTask, Overloaded, submit
from cato_mq import app as cato_app
from cato_mq.policy.overload import MAX_RETRY_AFTER_S
from cato_mq.state import keys
from tests.conftest import WorkerFactory


def generation() -> CodingTask:
    # three nodes (retrieve, llm, validate): each later node is published by the worker
    return CodingTask(kind="generation", prompt="return the n-th fibonacci number", max_tokens=8,
                      sla={"metric": "e2e", "seconds": 60})


def queued(rds: redis.Redis, pool: str = "default") -> int:
    return sum(rds.llen(name) for name in keys.backlog_lists(pool))


@pytest.fixture
def bound(rds: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> redis.Redis:
    monkeypatch.setenv("CATO_MAX_BACKLOG", "2")
    cato_app.reset()
    yield rds
    monkeypatch.delenv("CATO_MAX_BACKLOG")
    cato_app.reset()


def test_submit_over_the_bound_is_refused_whole_and_admitted_requests_finish(
    bound: redis.Redis, workers: WorkerFactory
) -> None:
    admitted = [submit(generation()), submit(generation())]  # no worker yet: both wait
    keys_before = set(bound.keys("*"))
    with pytest.raises(Overloaded) as refused:
        submit(generation())
    assert refused.value.queued == 2 and refused.value.limit == 2 and refused.value.pool == "default"
    assert refused.value.retry_after_s == MAX_RETRY_AFTER_S  # no live replica drains anything yet
    assert "CATO_MAX_BACKLOG" in str(refused.value) and "\n" not in str(refused.value)
    assert set(bound.keys("*")) == keys_before and queued(bound) == 2  # nothing enqueued half-way

    # one slot: while it runs the first request, that request's next node joins the other
    # request's node on the queues, at the bound; it must not be refused
    workers("--concurrency", "1")
    assert all(h.result(timeout=60).text for h in admitted)
    assert queued(bound) == 0
    assert submit(generation()).result(timeout=60).text  # drained: admitted again


def test_racing_submits_get_exactly_the_places_left(bound: redis.Redis) -> None:
    outcomes: list[str] = []
    lock = threading.Lock()
    go = threading.Barrier(8)

    def one() -> None:
        go.wait()
        try:
            submit(generation())
            outcome = "admitted"
        except Overloaded:
            outcome = "refused"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["admitted"] * 2 + ["refused"] * 6
    assert queued(bound) == 2


def test_cli_submit_over_the_bound_says_so_in_one_line(bound: redis.Redis, redis_url: str) -> None:
    submit(generation())
    submit(generation())
    out = subprocess.run([sys.executable, "-m", "cato_mq.cli", "submit", "--kind", "summarization", "--prompt", "x"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "CATO_REDIS_URL": redis_url, "CATO_MAX_BACKLOG": "2"})
    assert out.returncode == 1
    # (a warning line before it says no replica serves the pool)
    refusals = [line for line in out.stderr.splitlines() if "Overloaded" in line]
    assert len(refusals) == 1 and "Overloaded: pool default is overloaded" in refusals[0]
    assert "Traceback" not in out.stderr
    assert queued(bound) == 2


def test_a_bound_of_zero_bounds_nothing(rds: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATO_MAX_BACKLOG", "0")
    cato_app.reset()
    for _ in range(5):
        submit(generation())
    assert queued(rds) == 5
