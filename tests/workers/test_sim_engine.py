import asyncio

import pytest

from cato_mq.engine.timing import EngineTiming
from workers.engine import RequestTooLong, SamplingParams
from workers.sim_engine import SimEngine


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
    p = EngineTiming()
    assert p.step_s(16, 0) > p.step_s(1, 0) > p.step_s(0, 0)
    assert p.step_s(1, 1000) - p.step_s(1, 0) == pytest.approx(p.prefill_base_s + 1000 * p.prefill_per_token_s)


def test_one_request_follows_the_timing_model() -> None:
    async def go() -> None:
        clock = VirtualClock()
        profile = EngineTiming()
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
        profile = EngineTiming()
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
        engine = SimEngine(EngineTiming(max_num_seqs=2), sleep=clock.sleep)
        await engine.start()
        await asyncio.gather(*(_collect(engine, clock, f"r{i}", "a", 10) for i in range(4)))
        assert engine.steps == 20  # two waves of ten steps
        await engine.shutdown()

    run(go())


def test_too_long_request_is_refused_with_both_numbers() -> None:
    async def go() -> None:
        engine = SimEngine(EngineTiming(max_model_len=100), sleep=VirtualClock().sleep)
        await engine.start()
        with pytest.raises(RequestTooLong, match=r"80 tokens.*max_tokens 50.*100 tokens"):
            async for _ in engine.generate("r", "x" * 320, SamplingParams(max_tokens=50)):
                pass
        await engine.shutdown()

    run(go())


def test_closing_the_stream_frees_the_slot() -> None:
    async def go() -> None:
        clock = VirtualClock()
        engine = SimEngine(EngineTiming(max_num_seqs=1), sleep=clock.sleep)
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


def test_a_long_prompt_is_prefilled_in_budget_chunks_while_running_requests_keep_decoding() -> None:
    async def go() -> None:
        clock = VirtualClock()
        profile = EngineTiming(max_num_batched_tokens=256, chars_per_token=1.0)
        engine = SimEngine(profile, sleep=clock.sleep)
        await engine.start()
        short = asyncio.ensure_future(_collect(engine, clock, "short", "x" * 10, 8))
        await asyncio.sleep(0)  # the short one goes on the engine first
        long = asyncio.ensure_future(_collect(engine, clock, "long", "y" * 600, 2))
        (short_out, short_first, short_end), (_, long_first, _) = await asyncio.gather(short, long)
        # step 1: the short prompt alone (the long one arrives during it); steps 2 to 4: the
        # short one's decode beside 255, 255 and the last 90 of the long prompt's tokens
        assert short_first == pytest.approx(profile.step_s(0, 10))
        chunks = profile.step_s(1, 255) * 2 + profile.step_s(1, 90)
        assert long_first == pytest.approx(short_first + chunks)
        assert len(short_out) == 8
        # the short one decoded a token in every chunked step instead of waiting out the
        # prompt: its last four tokens come one step beside the long one, then three alone
        assert short_end == pytest.approx(long_first + profile.step_s(2, 0) + 3 * profile.step_s(1, 0))
        await engine.shutdown()

    run(go())


def test_stop_ends_the_request_on_the_engine_and_is_left_out() -> None:
    from workers.engine import Outcome

    async def main() -> tuple[str, str, Outcome, Outcome]:
        clock = VirtualClock()
        engine = SimEngine(EngineTiming(), sleep=clock.sleep)
        await engine.start()
        free = "".join([p async for p in engine.generate("a", "alpha beta", SamplingParams(max_tokens=200, seed=3))])
        outcome = Outcome()
        params = SamplingParams(max_tokens=200, seed=3, stop=("return",))
        cut = "".join([p async for p in engine.generate("b", "alpha beta", params, outcome)])
        full = Outcome()
        [_ async for _ in engine.generate("c", "alpha", SamplingParams(max_tokens=5), full)]
        await engine.shutdown()
        return free, cut, outcome, full

    free, cut, outcome, full = run(main())
    assert "return" in free and cut == free[: free.index("return")]  # the same text, up to the stop
    assert outcome.finish_reason == "stop" and outcome.completion_tokens < 200 and outcome.prompt_tokens > 0
    assert full.finish_reason == "length" and full.completion_tokens == 5
