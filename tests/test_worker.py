"""Worker processes under real Redis: strict tier order, re-tiering along a chain, crash recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import redis

from cato_mq import CodingTask, keys, submit
from cato_mq.client import Handle
from tests.conftest import WorkerFactory


def first_token_event(h: Handle, timeout: float = 30) -> dict[str, str]:
    for kind, fields in h.events(timeout):
        if kind == "tok":
            return fields
    raise AssertionError("request ended without a token")


def test_later_link_is_retiered_after_a_slow_node(workers: WorkerFactory) -> None:
    # the engine runs 10x slower than the estimates the pool was seeded with
    workers("--time-scale", "10")
    task = CodingTask(kind="translation", prompt="def f(x):\n    return x + 1\n", target_language="go",
                      max_tokens=16, sla={"metric": "e2e", "seconds": 0.5})
    result = submit(task).result(timeout=60)
    llm, validate = result.nodes
    assert llm.tier == "safe"
    assert not llm.met_deadline
    assert validate.queued_at > validate.deadline  # its deadline had passed when it was published
    assert validate.tier == "violated"
    assert not result.met_sla


def test_violated_and_at_risk_nodes_overtake_queued_safe_ones(workers: WorkerFactory, rds: redis.Redis) -> None:
    workers("-c", "1", "--time-scale", "3")
    long = submit(CodingTask(kind="summarization", prompt="def busy(): pass", max_tokens=150,
                             sla={"metric": "e2e", "seconds": 60}))
    first_token_event(long)  # the only slot is now taken

    def small(sla: float, **kw: float) -> Handle:
        return submit(CodingTask(kind="summarization", prompt="def g(): pass", max_tokens=4,
                                 sla={"metric": "e2e", "seconds": sla}), **kw)

    safe = [small(60) for _ in range(3)]
    at_risk = small(0.03)
    violated = small(10, arrived_at=time.time() - 100)
    queued = {t: sum(rds.llen(q) for q in keys.queue_lists("default", t)) for t in keys.TIERS}
    assert queued == {"violated": 1, "at_risk": 1, "safe": 3}

    results = [h.result(timeout=60) for h in (violated, at_risk, *safe)]
    starts = [r.nodes[0].started_at for r in results]
    assert [r.nodes[0].tier for r in results] == ["violated", "at_risk", "safe", "safe", "safe"]
    assert starts == sorted(starts)  # violated first, then at-risk, then safe in arrival order
    assert long.result(timeout=60).nodes[0].ended_at <= starts[0]


def test_sigkilled_worker_loses_no_request(workers: WorkerFactory) -> None:
    a = workers("-c", "2", device="0")
    b = workers("-c", "2", device="1")
    h = submit(CodingTask(kind="summarization", prompt="def slow(): pass", max_tokens=400,
                          sla={"metric": "e2e", "seconds": 60}))
    first = first_token_event(h)
    victim, survivor = (a, b) if first["w"].startswith("default-sim-d0@") else (b, a)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)

    streamed = "".join(h.stream(timeout=60))
    result = h.result(timeout=60)
    assert streamed == result.text  # the regenerated node's text continues what was shown
    node = result.nodes[0]
    assert node.redelivered
    assert node.worker != first["w"]
    assert survivor.poll() is None


def test_worker_refuses_unknown_pool_with_exit_2(redis_url: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "cato_mq.cli", "worker", "--pool", "nope"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "unknown pool 'nope'" in proc.stderr


def test_worker_keeps_registry_and_counters(workers: WorkerFactory, rds: redis.Redis) -> None:
    workers("-c", "3")
    entry = rds.hgetall(keys.replicas("default"))
    (name, value), = entry.items()
    _, concurrency, _, state = value.split()
    assert name.startswith("default-sim-d0@") and concurrency == "3" and state == "ready"
    ok = submit(CodingTask(kind="summarization", prompt="def a(): pass", max_tokens=8)).result(timeout=30)
    late = submit(CodingTask(kind="summarization", prompt="def b(): pass", max_tokens=8),
                  arrived_at=time.time() - 60).result(timeout=30)
    assert ok.met_sla and not late.met_sla
    windows = [rds.hgetall(k) for k in rds.scan_iter("cato:win:default:*")]
    total = {f: sum(int(w.get(f, 0)) for w in windows) for f in ("requests", "request_violations", "node_violations")}
    assert total == {"requests": 2, "request_violations": 1, "node_violations": 1}
    est = rds.hgetall(keys.estimates("default"))
    assert float(est["llm:per_token"]) > 0 and "node" in est
