"""After real traffic through a real worker process, the endpoint's counts and buckets are
the requests sent: met and missed per kind, a failure, a cancellation, nodes per tier."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import redis

from cato_mq import CodingTask, Kind, Result, submit
from cato_mq.client import RequestFailed
from cato_mq.state import keys, outcomes, registry
from cato_mq.state.dead import KINDS as DEAD_KINDS
from tests.conftest import WorkerFactory
from tests.metrics.conftest import scrape, value
from workers.gate import Verdict

#: ``serve``: the 1 ms requests below are to be served late (missed), not shed (failed)
CATO_PLUS = {"CATO_ROUTING": "cato+", "CATO_ON_LOST": "serve"}
#: A TTFT kind's SLA on its first token, the others' on the whole request.
METRIC = {Kind.completion: "ttft", Kind.generation: "ttft", Kind.summarization: "e2e", Kind.translation: "e2e"}


def task(kind: Kind, seconds: float) -> CodingTask:
    return CodingTask(kind=kind, prompt="def add(a, b):\n    return a + b\n", target_language="go"
                      if kind is Kind.translation else None, max_tokens=8,
                      sla={"metric": METRIC[kind], "seconds": seconds})


def wait_for(check: object, timeout: float = 15) -> None:
    until = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > until:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_counts_and_buckets_are_the_requests_sent(
    workers: WorkerFactory, rds: redis.Redis, endpoint: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, setting in CATO_PLUS.items():  # the client's router too: admission runs at the worker
        monkeypatch.setenv(name, setting)
    workers("-c", "4", env=CATO_PLUS)
    # two of each kind with all the time they need, one that cannot meet a 1 ms SLA
    handles = [submit(task(k, s)) for k in Kind for s in (60, 60, 0.001)]
    too_long = submit(CodingTask(kind="summarization", prompt="x" * 60_000, max_tokens=8))
    results: list[Result] = [h.result(timeout=60) for h in handles]
    with pytest.raises(RequestFailed):
        too_long.result(timeout=60)

    samples = scrape(endpoint)
    for kind in Kind:
        mine = [r for r in results if r.kind == kind]
        met = sum(r.met_sla for r in mine)
        assert met >= 1 and len(mine) - met >= 1  # the 1 ms request missed
        assert value(samples, "cato:requests_total", pool="default", kind=kind, outcome="met") == met
        assert value(samples, "cato:requests_total", pool="default", kind=kind, outcome="missed") == len(mine) - met
        failed = value(samples, "cato:requests_total", pool="default", kind=kind, outcome="failed")
        assert failed == (1 if kind is Kind.summarization else 0)
        assert value(samples, "cato:requests_total", pool="other", kind=kind, outcome="met") == 0
        for series, bounds, seen in (
            ("cato:e2e_request_latency_seconds", outcomes.E2E_BUCKETS, [r.e2e_s for r in mine]),
            ("cato:time_to_first_token_seconds", outcomes.TTFT_BUCKETS, [r.ttft_s for r in mine if r.ttft_s]),
        ):
            labels = {"pool": "default", "kind": kind}
            assert value(samples, f"{series}_count", **labels) == len(seen) > 0
            assert value(samples, f"{series}_sum", **labels) == pytest.approx(sum(seen))
            for bound in (*bounds, float("inf")):
                expected = sum(v <= bound for v in seen)
                assert value(samples, f"{series}_bucket", le=outcomes.le(bound), **labels) == expected

    nodes = Counter((n.step, n.tier) for r in results for n in r.nodes)
    # a request's earlier nodes are recorded by the outbox, within a flush period of its end
    wait_for(lambda: sum(s.value for s in scrape(endpoint) if s.name == "cato:nodes_total") >= nodes.total())
    samples = scrape(endpoint)
    emitted = {(s.labels["step"], s.labels["tier"]): s.value for s in samples
               if s.name == "cato:nodes_total" and s.labels["pool"] == "default"}
    assert {k: v for k, v in emitted.items() if v} == nodes
    assert len(emitted) == 3 * len(keys.TIERS)  # every step and tier from zero: rate() works at once
    # every LLM node that ran was admitted once at the gate: the finished ones and the one too long
    llm = sum(n.step == "llm" for r in results for n in r.nodes) + 1
    assert value(samples, "cato:admission_decisions_total", pool="default", decision="admitted") == llm
    assert {s.labels["reason"] for s in samples if s.name == "cato:dead_letters_total"} == set(DEAD_KINDS)

    # live state: one ready replica with its slots, empty queues once the heartbeat says so
    wait_for(lambda: sum(s.value for s in scrape(endpoint) if s.name == "cato:num_requests_running") == 0)
    samples = scrape(endpoint)
    assert value(samples, "cato:replicas", pool="default", state="ready") == 1
    assert value(samples, "cato:replicas", pool="other", state="ready") == 0
    assert [s.value for s in samples if s.name == "cato:batch_slots"] == [4]
    assert 0.25 <= value(samples, "cato:speed_drift", pool="default") <= 4
    assert sum(s.value for s in samples if s.name == "cato:queue_depth") == 0
    assert value(samples, "cato:sla_seconds", kind="completion", metric="ttft") == 1.0


def test_a_cancelled_request_counts_cancelled_once(workers: WorkerFactory, rds: redis.Redis, endpoint: str) -> None:
    workers("-c", "2", "--time-scale", "10")
    h = submit(CodingTask(kind="translation", prompt="def f(): pass", target_language="rust", max_tokens=2000,
                          sla={"metric": "e2e", "seconds": 600}))
    next(h.stream(timeout=30))  # its LLM node runs on the engine
    assert h.cancel()

    def cancelled() -> float:
        return value(scrape(endpoint), "cato:requests_total", pool="default", kind="translation", outcome="cancelled")

    wait_for(lambda: cancelled() == 1)  # counted by the worker that stopped its node
    samples = scrape(endpoint)
    for outcome in ("met", "missed", "failed"):
        assert value(samples, "cato:requests_total", pool="default", kind="translation", outcome=outcome) == 0
    assert rds.get(keys.outcome(h.request_id)) == "cancelled" and rds.ttl(keys.outcome(h.request_id)) > 0


def test_provisioner_orders_and_desired_replicas(rds: redis.Redis, endpoint: str) -> None:
    pipe = rds.pipeline(transaction=False)
    outcomes.count_orders(pipe, [("default", "spawn"), ("default", "spawn"), ("other", "retire")])
    pipe.set(keys.prov_last(), '{"desired": {"default": 3, "other": 0}}')
    pipe.execute()
    samples = scrape(endpoint)
    assert value(samples, "cato:provisioner_decisions_total", pool="default", direction="up") == 2
    assert value(samples, "cato:provisioner_decisions_total", pool="other", direction="down") == 1
    assert value(samples, "cato:provisioner_decisions_total", pool="other", direction="up") == 0
    assert value(samples, "cato:desired_replicas", pool="default") == 3


def test_replicas_by_state_and_per_replica_gauges(rds: redis.Redis, endpoint: str) -> None:
    now = time.time()
    pipe = rds.pipeline(transaction=False)
    for name, entry in {
        "stale": registry.Entry(1, 4, now - 2.0),  # silent past 3 heartbeats (0.2 s here)
        "ready": registry.Entry(3, 8, now, "ready", 1.5),
        "leaving": registry.Entry(1, 8, now, "draining"),
    }.items():
        registry.write(pipe, "default", name, entry, heartbeat_s=0.2)
    pipe.execute()
    samples = scrape(endpoint)
    states = {s.labels["state"]: s.value for s in samples
              if s.name == "cato:replicas" and s.labels["pool"] == "default"}
    assert states == {"ready": 1, "draining": 1, "stale": 1}
    running = {s.labels["replica"]: s.value for s in samples if s.name == "cato:num_requests_running"}
    assert running == {"ready": 3, "leaving": 1}  # a stale entry's worker is gone: no gauge
    assert value(samples, "cato:batch_slots", replica="ready") == 8
    assert value(samples, "cato:speed_drift", replica="ready") == 1.5


def test_each_gate_verdict_counts_as_its_decision(rds: redis.Redis, endpoint: str) -> None:
    for verdict in (Verdict.admitted, Verdict.requeue, Verdict.requeue, Verdict.demote):
        outcomes.count_admission(rds, "other", verdict)
    samples = scrape(endpoint)
    decisions = {s.labels["decision"]: s.value for s in samples
                 if s.name == "cato:admission_decisions_total" and s.labels["pool"] == "other"}
    assert decisions == {"admitted": 1, "held": 2, "demoted": 1}
