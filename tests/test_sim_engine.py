import asyncio

import pytest

from workers.engine import RequestTooLong, SamplingParams
from workers.sim_engine import SimEngine, SimProfile


class VirtualClock:
    """Counts the seconds the engine asks to sleep, and yields control without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    async def sleep(self, seconds: float) -> None:
        for _ in range(3):  # let consumers read the previous step's tokens at its time
            await asyncio.sleep(0)
        self.now += seconds


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def _collect(
    engine: SimEngine, clock: VirtualClock, rid: str, prompt: str, n: int
) -> tuple[list[str], float, float]:
    first = None
    out = []
    async for piece in engine.generate(rid, prompt, SamplingParams(max_tokens=n, seed=1)):
        first = clock.now if first is None else first
        out.append(piece)
    assert first is not None
    return out, first, clock.now


def test_step_time_grows_with_batch_and_prompt() -> None:
    p = SimProfile()
    assert p.step_s(16, 0) > p.step_s(1, 0) > p.step_s(0, 0)
    assert p.step_s(1, 1000) - p.step_s(1, 0) == pytest.approx(p.prefill_base_s + 1000 * p.prefill_per_token_s)


def test_one_request_follows_the_timing_model() -> None:
    async def go() -> None:
        clock = VirtualClock()
        profile = SimProfile()
        engine = SimEngine(profile, sleep=clock.sleep)
        await engine.start()
        prompt = "x" * 400  # 100 tokens at 4 chars per token
        out, first, end = await _collect(engine, clock, "r", prompt, 64)
        assert len(out) == 64
        assert first == pytest.approx(profile.step_s(0, 100))
        assert end == pytest.approx(first + 63 * profile.step_s(1, 0))
        await engine.shutdown()

    run(go())


def test_concurrent_requests_share_steps() -> None:
    """16 requests together take about as many steps as one: continuous batching."""

    async def go() -> None:
        clock = VirtualClock()
        profile = SimProfile()
        engine = SimEngine(profile, sleep=clock.sleep)
        await engine.start()
        results = await asyncio.gather(*(_collect(engine, clock, f"r{i}", "x" * 16, 64) for i in range(16)))
        assert all(len(out) == 64 for out, _, _ in results)
        assert engine.steps == 64
        one_alone = profile.step_s(0, 4) + 63 * profile.step_s(1, 0)
        assert clock.now < 2 * one_alone  # sixteen sequential runs would take 16x
        assert clock.now == pytest.approx(profile.step_s(0, 16 * 4) + 63 * profile.step_s(16, 0))
        await engine.shutdown()

    run(go())


def test_batch_is_capped_by_max_num_seqs() -> None:
    async def go() -> None:
        clock = VirtualClock()
        engine = SimEngine(SimProfile(max_num_seqs=2), sleep=clock.sleep)
        await engine.start()
        await asyncio.gather(*(_collect(engine, clock, f"r{i}", "a", 10) for i in range(4)))
        assert engine.steps == 20  # two waves of ten steps
        await engine.shutdown()

    run(go())


def test_too_long_request_is_refused_with_both_numbers() -> None:
    async def go() -> None:
        engine = SimEngine(SimProfile(max_model_len=100), sleep=VirtualClock().sleep)
        await engine.start()
        with pytest.raises(RequestTooLong, match=r"80 tokens.*max_tokens 50.*100 tokens"):
            async for _ in engine.generate("r", "x" * 320, SamplingParams(max_tokens=50)):
                pass
        await engine.shutdown()

    run(go())


def test_closing_the_stream_frees_the_slot() -> None:
    async def go() -> None:
        clock = VirtualClock()
        engine = SimEngine(SimProfile(max_num_seqs=1), sleep=clock.sleep)
        await engine.start()
        gen = engine.generate("a", "a", SamplingParams(max_tokens=1000))
        await gen.__anext__()
        await gen.aclose()
        out, _, _ = await _collect(engine, clock, "b", "b", 5)
        assert len(out) == 5
        assert engine.steps < 20  # "a" did not keep running to 1000 tokens
        await engine.shutdown()

    run(go())


def test_same_seed_same_text() -> None:
    async def go() -> list[str]:
        engine = SimEngine(sleep=VirtualClock().sleep)
        await engine.start()
        out = [p async for p in engine.generate("r", "def fib(n): return n", SamplingParams(max_tokens=20, seed=7))]
        await engine.shutdown()
        return out

    assert run(go()) == run(go())
