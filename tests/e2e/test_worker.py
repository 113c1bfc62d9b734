"""Worker processes under real Redis: strict tier order, re-tiering along a chain, crash recovery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from cato_mq import CodingTask, submit
from cato_mq import app as cato_app
from cato_mq.client import Handle
from cato_mq.state import keys
from tests.conftest import WorkerFactory

CATO_PLUS = {"CATO_ROUTING": "cato+"}


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
    assert queued == {"violated": 1, "at_risk": 1, "safe": 3, "best_effort": 0}

    results = [h.result(timeout=60) for h in (violated, at_risk, *safe)]
    starts = [r.nodes[0].started_at for r in results]
    assert [r.nodes[0].tier for r in results] == ["violated", "at_risk", "safe", "safe", "safe"]
    assert starts == sorted(starts)  # violated first, then at-risk, then safe in arrival order
    assert long.result(timeout=60).nodes[0].ended_at <= starts[0]


def test_cato_plus_serves_feasible_nodes_before_lost_ones(
    workers: WorkerFactory, rds: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATO_ROUTING", "cato+")  # this process's router: the client's
    cato_app.reset()
    workers("-c", "1", "--time-scale", "3", env=CATO_PLUS)
    long = submit(CodingTask(kind="summarization", prompt="def busy(): pass", max_tokens=150,
                             sla={"metric": "e2e", "seconds": 60}))
    first_token_event(long)  # the only slot is now taken

    def small(**kw: float) -> Handle:
        return submit(CodingTask(kind="summarization", prompt="def g(): pass", max_tokens=4,
                                 sla={"metric": "e2e", "seconds": 10}), **kw)

    lost = small(arrived_at=time.time() - 100)  # violated-first under cato; best effort here
    feasible = [small() for _ in range(2)]
    queued = {t: sum(rds.llen(q) for q in keys.queue_lists("default", t)) for t in keys.TIERS}
    assert queued == {"violated": 0, "at_risk": 0, "safe": 2, "best_effort": 1}

    results = [h.result(timeout=60) for h in (*feasible, lost)]
    assert [r.nodes[0].tier for r in results] == ["safe", "safe", "best_effort"]
    assert results[2].nodes[0].started_at >= max(r.nodes[0].ended_at for r in results[:2])
    assert [r.met_sla for r in results] == [True, True, False]


def _tight_request_on_a_steep_cato_plus_worker(
    workers: WorkerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Handle:
    """One cato+ worker with 2 slots on a steep engine (67 tokens/s for one request, 40
    each for two), running a request that needs 60 tokens in 1.2 s: 50 tokens/s, met alone
    (0.9 s), missed beside another. Returns once its first token streamed."""
    profile = tmp_path / "steep.json"
    profile.write_text(json.dumps({"decode_base_s": 0.005, "decode_per_seq_s": 0.01}))
    monkeypatch.setenv("CATO_ROUTING", "cato+")
    cato_app.reset()
    workers("-c", "2", "--profile", str(profile), env=CATO_PLUS)
    tight = submit(CodingTask(kind="summarization", prompt="def f(): pass", max_tokens=60,
                              sla={"metric": "e2e", "seconds": 1.2}))
    first_token_event(tight)
    return tight


def test_cato_plus_gate_holds_a_node_that_would_make_an_admitted_one_late(
    workers: WorkerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tight = _tight_request_on_a_steep_cato_plus_worker(workers, tmp_path, monkeypatch)
    relaxed = submit(CodingTask(kind="summarization", prompt="def g(): pass", max_tokens=5,
                                sla={"metric": "e2e", "seconds": 60}))
    a, b = tight.result(timeout=60), relaxed.result(timeout=60)
    assert a.met_sla and b.met_sla
    # the second slot was free, yet the node waited at the gate until the first request
    # was far enough ahead (its need fell to 40 tokens/s, about 0.55 s into its 0.95 s)
    held = b.nodes[0].started_at - b.nodes[0].queued_at
    assert held > 0.25
    assert b.nodes[0].started_at < a.nodes[0].ended_at  # ... not until it left: SABER's rule


def test_cato_plus_demotes_a_held_node_once_its_request_is_lost_and_keeps_the_chain(
    workers: WorkerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tight = _tight_request_on_a_steep_cato_plus_worker(workers, tmp_path, monkeypatch)
    # feasible when published (about 0.1 s of work alone, 0.3 s to go), lost while held
    short = submit(CodingTask(kind="translation", prompt="def g(): pass", target_language="go", max_tokens=5,
                              sla={"metric": "e2e", "seconds": 0.3}))
    a, b = tight.result(timeout=60), short.result(timeout=60)
    assert a.met_sla and not b.met_sla
    assert [n.step for n in b.nodes] == ["llm", "validate"]  # the retry kept the rest of the chain
    assert [n.tier for n in b.nodes] == ["best_effort", "best_effort"]
    assert b.valid is not None


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
    _, concurrency, _, state, drift = value.split()
    assert name.startswith("default-sim-d0@") and concurrency == "3" and state == "ready"
    assert float(drift) == 1.0  # no LLM node observed yet: the engine runs as profiled
    ok = submit(CodingTask(kind="summarization", prompt="def a(): pass", max_tokens=8)).result(timeout=30)
    late = submit(CodingTask(kind="summarization", prompt="def b(): pass", max_tokens=8),
                  arrived_at=time.time() - 60).result(timeout=30)
    assert ok.met_sla and not late.met_sla
    windows = [rds.hgetall(k) for k in rds.scan_iter("cato:win:default:*")]
    total = {f: sum(int(w.get(f, 0)) for w in windows) for f in ("requests", "request_violations", "node_violations")}
    assert total == {"requests": 2, "request_violations": 1, "node_violations": 1}
    est = rds.hgetall(keys.estimates("default"))
    assert float(est["llm:per_token"]) > 0 and "node" in est


@pytest.mark.parametrize("on_lost", ["shed", "serve"])
def test_cato_plus_sheds_a_ttft_request_already_lost_unless_told_to_serve_it(
    workers: WorkerFactory, monkeypatch: pytest.MonkeyPatch, on_lost: str
) -> None:
    from cato_mq.client import RequestFailed

    monkeypatch.setenv("CATO_ROUTING", "cato+")
    monkeypatch.setenv("CATO_ON_LOST", on_lost)
    cato_app.reset()
    workers("-c", "2", env={**CATO_PLUS, "CATO_ON_LOST": on_lost})
    # a 1 s TTFT SLA counted from 10 s ago: its first token cannot come in time
    late = submit(CodingTask(kind="completion", prompt="def f(", max_tokens=4), arrived_at=time.time() - 10)
    began = time.monotonic()
    on_time = submit(CodingTask(kind="completion", prompt="def g(", max_tokens=4))
    if on_lost == "shed":
        with pytest.raises(RequestFailed, match=r"node 0 \(retrieve\) failed: shed: its 1 s TTFT deadline passed"):
            late.result(timeout=30)
        assert time.monotonic() - began < 5  # at once, not after the other work
    else:
        result = late.result(timeout=30)
        assert result.text and not result.met_sla and result.nodes[0].tier == "best_effort"
    assert on_time.result(timeout=30).text  # feasible work is served either way
