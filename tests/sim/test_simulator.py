"""The discrete-event simulator: exact timings on small scenarios, policy effects, determinism."""

from __future__ import annotations

import dataclasses

import pytest

from cato_mq.bench import corpus, scoring, workload
from cato_mq.bench.workload import Request
from cato_mq.engine.timing import EngineTiming
from cato_mq.policy.provisioner_config import ProvisionerConfig
from cato_mq.schemas import Kind
from cato_mq.sim.model import SYSTEMS, SimConfig
from cato_mq.sim.simulator import simulate

P = EngineTiming()


def summ(kind: Kind, at: float, tokens: int, prompt: int = 100, sla: float = 100.0) -> Request:
    metric = "ttft" if kind in (Kind.completion, Kind.generation) else "e2e"
    return Request(at, kind, metric, sla, "x", prompt, tokens)


def test_one_request_alone_takes_exactly_the_engine_steps() -> None:
    res = simulate([summ(Kind.summarization, 0.0, 10)], SimConfig("cato", replicas=1, hop_s=0.003, submit_s=0.0))
    o = res.outcomes[0]
    first = 0.003 + P.step_s(0, 100)
    assert o.ttft_s == pytest.approx(first)
    assert o.e2e_s == pytest.approx(first + 9 * P.decode_s(1))
    assert o.met


def test_long_prompts_decode_slower_when_the_profile_measured_the_context_cost() -> None:
    blind = EngineTiming()
    aware = EngineTiming(decode_per_context_token_s=2e-6, decode_context_ref=100)
    reqs = [summ(Kind.summarization, 0.0, 40, prompt=p) for p in (100, 100, 1500, 1500)]

    def e2e(profile: EngineTiming) -> list[float]:
        res = simulate(reqs, SimConfig("cato", replicas=1, hop_s=0.003, submit_s=0.0, profile=profile))
        return [o.e2e_s or 0.0 for o in res.outcomes]

    # the long prompts' KV is read at every step of the shared batch: everyone slows
    assert all(a > b for a, b in zip(e2e(aware), e2e(blind), strict=True))
    short_only = [summ(Kind.summarization, 0.0, 40, prompt=100) for _ in range(4)]
    same = [simulate(short_only, SimConfig("cato", replicas=1, hop_s=0.003, submit_s=0.0, profile=p)).outcomes
            for p in (blind, aware)]
    # at the measured context a request decodes as the context-blind profile says (the
    # context grows by its generated tokens, so slightly later)
    assert [o.e2e_s for o in same[1]] == pytest.approx([o.e2e_s for o in same[0]], rel=0.05)


def test_a_request_arriving_mid_decode_joins_at_the_next_step_boundary() -> None:
    # the first decodes alone in steps of decode_s(1); the second is taken at the first
    # boundary after it is published, in a step with one decode plus its prefill
    a, b = summ(Kind.summarization, 0.0, 50), summ(Kind.summarization, 0.1, 5, prompt=200)
    res = simulate([a, b], SimConfig("fifo", replicas=1, hop_s=0.0, submit_s=0.0))
    t0, d = P.step_s(0, 100), P.decode_s(1)
    j = int((0.1 - t0) / d) + 1
    boundary = t0 + j * d
    second = res.outcomes[1]
    assert second.ttft_s == pytest.approx(boundary + P.step_s(1, 200) - 0.1)
    assert second.e2e_s == pytest.approx(boundary + P.step_s(1, 200) + 4 * P.decode_s(2) - 0.1)


def test_time_scale_stretches_every_step() -> None:
    one = simulate([summ(Kind.summarization, 0.0, 10)], SimConfig("cato", replicas=1, hop_s=0.0, submit_s=0.0))
    cfg = SimConfig("cato", replicas=1, hop_s=0.0, submit_s=0.0, time_scale=5.0)
    five = simulate([summ(Kind.summarization, 0.0, 10)], cfg)
    assert five.outcomes[0].e2e_s == pytest.approx(5 * (one.outcomes[0].e2e_s or 0))


def test_round_robin_queues_behind_a_busy_replica_while_pull_does_not() -> None:
    # two 1-slot replicas; a long node takes r0, a short one r1 and finishes, then a third
    # node: round-robin pushes it to r0 (busy for seconds), pull gives it to idle r1
    reqs = [summ(Kind.summarization, 0.0, 500), summ(Kind.summarization, 0.01, 2), summ(Kind.summarization, 1.0, 2)]
    rr = simulate(reqs, SimConfig("round-robin", replicas=2, slots=1))
    pull = simulate(reqs, SimConfig("fifo", replicas=2, slots=1))
    assert (rr.outcomes[2].e2e_s or 0) > 1.0 > (pull.outcomes[2].e2e_s or 0)


def test_violated_nodes_are_served_before_safe_ones() -> None:
    # one slot, busy with a long node; then a safe request with a loose SLA and one whose
    # deadline has passed by the time it is published: cato serves the violated one first
    reqs = [summ(Kind.summarization, 0.0, 300), summ(Kind.summarization, 0.1, 5, sla=100.0),
            summ(Kind.summarization, 0.2, 5, sla=0.001)]
    res = simulate(reqs, SimConfig("cato", replicas=1, slots=1))
    fifo = simulate(reqs, SimConfig("fifo", replicas=1, slots=1))
    assert (res.outcomes[2].e2e_s or 0) + 0.2 < (res.outcomes[1].e2e_s or 0) + 0.1
    assert (fifo.outcomes[2].e2e_s or 0) + 0.2 > (fifo.outcomes[1].e2e_s or 0) + 0.1


def test_cato_plus_serves_a_hopeless_request_last() -> None:
    # same as above: the violated request is hopeless (SLA far below one engine step),
    # so cato+ demotes it to best effort and serves the feasible one first
    reqs = [summ(Kind.summarization, 0.0, 300), summ(Kind.summarization, 0.1, 5, sla=100.0),
            summ(Kind.summarization, 0.2, 5, sla=0.001)]
    res = simulate(reqs, SimConfig("cato+", replicas=1, slots=1))
    assert (res.outcomes[2].e2e_s or 0) + 0.2 > (res.outcomes[1].e2e_s or 0) + 0.1
    assert res.outcomes[1].met and not res.outcomes[2].met


def _one_slot_at(reqs: list[Request], part: str, system: str) -> list[float]:
    """When each request reached ``part`` (``ttft_s`` or ``e2e_s``) on one replica of one slot."""
    res = simulate(reqs, SimConfig(system, replicas=1, slots=1))
    return [(getattr(o, part) or 0) + r.at for o, r in zip(res.outcomes, reqs, strict=True)]


def test_cato_plus_serves_a_ttft_node_before_an_earlier_e2e_node_of_the_same_tier() -> None:
    # one slot, busy; then a summarization and a completion, both safe (loose SLAs): cato
    # serves them first come first served, cato+ the completion first (its SLA needs only
    # a prefill, the summarization's a whole decode)
    reqs = [summ(Kind.summarization, 0.0, 300), summ(Kind.summarization, 0.1, 50),
            summ(Kind.completion, 0.2, 5)]
    cato, plus = (_one_slot_at(reqs, "ttft_s", system) for system in ("cato", "cato+"))
    assert cato[1] < cato[2] and plus[2] < plus[1]


def test_cato_plus_serves_short_e2e_work_before_earlier_long_work_of_the_same_tier() -> None:
    # the same with a translation of 200 tokens and one of 8: cato+ finishes the short one
    # first (tiers.long_work: shortest remaining SLA work first)
    reqs = [summ(Kind.translation, 0.0, 300), summ(Kind.translation, 0.1, 200), summ(Kind.translation, 0.2, 8)]
    cato, plus = (_one_slot_at(reqs, "e2e_s", system) for system in ("cato", "cato+"))
    assert cato[1] < cato[2] and plus[2] < plus[1]


def test_cato_plus_holds_a_long_prefill_until_a_waiting_first_token_is_out() -> None:
    # a long summarization keeps the engine stepping; a tight completion and then one with
    # a 3,000-token prompt arrive within one step. fifo prefills both in the next step, so
    # the tight one's first token waits for the long prefill and misses; cato+ holds the
    # long one a step, and both meet their TTFT
    reqs = [summ(Kind.summarization, 0.0, 1000), summ(Kind.completion, 0.5, 8, sla=0.3),
            summ(Kind.completion, 0.5005, 8, prompt=3000, sla=2.0)]
    cfg = {"replicas": 1, "slots": 4, "time_scale": 5.0}
    fifo = simulate(reqs, SimConfig("fifo", **cfg))
    plus = simulate(reqs, SimConfig("cato+", **cfg))
    assert not fifo.outcomes[1].met and fifo.outcomes[2].met
    assert plus.outcomes[1].met and plus.outcomes[2].met
    assert (plus.outcomes[1].ttft_s or 0) + 0.5 < (plus.outcomes[2].ttft_s or 0) + 0.5005


def test_deterministic_for_a_seed_for_every_system() -> None:
    c = corpus.Corpus()
    corpus.synthetic(c)
    reqs = workload.paper_mix(c, 20.0, 5.0, seed=2)
    for system in SYSTEMS:
        cfg = SimConfig(system, replicas=2, seed=5, scaling=ProvisionerConfig(tick_s=0.5, default_max=4))
        a, b = simulate(reqs, cfg), simulate(reqs, cfg)
        assert a.outcomes == b.outcomes and a.provisioned == b.provisioned, system


def test_autoscaling_adds_replicas_under_overload_after_the_cold_start() -> None:
    c = corpus.Corpus()
    corpus.synthetic(c)
    reqs = workload.paper_mix(c, 60.0, 20.0, seed=1)
    scaling = ProvisionerConfig(default_min=1, default_max=6, tick_s=1.0)
    for system in ("cato", "queue-length"):
        res = simulate(reqs, SimConfig(system, replicas=1, time_scale=5.0, scaling=scaling, cold_start_s=3.0))
        assert max(ready for _, ready, _ in res.timeline) > 1, system
        grown = next(t for t, ready, _ in res.timeline if ready > 1)
        ordered = next(t for t, _, starting in res.timeline if starting)
        assert grown >= ordered + 3.0 - 1e-9, system
        assert len(res.provisioned) > 1


def test_static_fleet_pays_replicas_times_horizon() -> None:
    reqs = [summ(Kind.summarization, 0.0, 10), summ(Kind.translation, 2.0, 10)]
    res = simulate(reqs, SimConfig("round-robin", replicas=3, tail_s=8.0))
    assert scoring.replica_seconds(res.provisioned) == pytest.approx(3 * 10.0)


@pytest.mark.parametrize("per_context_s", [0.0, 2e-6], ids=["context-blind", "context-cost"])
def test_the_simulator_and_the_sim_engine_agree_step_for_step_on_a_burst_of_long_prompts(
    per_context_s: float,
) -> None:
    import asyncio

    from workers.engine import SamplingParams
    from workers.sim_engine import SimEngine

    timing = EngineTiming(max_num_batched_tokens=1024, chars_per_token=1.0,
                          decode_per_context_token_s=per_context_s, decode_context_ref=400)
    burst = [(700, 12), (900, 3), (300, 20), (1500, 5), (50, 8)]  # prompt tokens, output tokens

    async def on_the_engine() -> list[tuple[float, float]]:
        now = 0.0

        async def sleep(seconds: float) -> None:
            nonlocal now
            for _ in range(3):
                await asyncio.sleep(0)
            now += seconds

        engine = SimEngine(timing, sleep=sleep)
        await engine.start()

        async def one(i: int, prompt: int, out: int) -> tuple[float, float]:
            first = None
            async for _ in engine.generate(f"r{i}", "x" * prompt, SamplingParams(max_tokens=out, seed=0)):
                first = now if first is None else first
            assert first is not None
            return first, now

        # the first arrival starts a step alone and the others join at its end, as in the
        # simulator, where arrivals at one instant reach the engine one after the other
        calls = [asyncio.ensure_future(one(0, *burst[0]))]
        await asyncio.sleep(0)
        calls += [asyncio.ensure_future(one(i, p, n)) for i, (p, n) in enumerate(burst) if i]
        got = list(await asyncio.gather(*calls))
        await engine.shutdown()
        return got

    engine = asyncio.run(on_the_engine())
    reqs = [summ(Kind.summarization, 0.0, n, prompt=p) for p, n in burst]
    sim = simulate(reqs, SimConfig("fifo", replicas=1, profile=timing, hop_s=0.0, submit_s=0.0))
    for (first, end), o in zip(engine, sim.outcomes, strict=True):
        assert o.ttft_s == pytest.approx(first) and o.e2e_s == pytest.approx(end)
    assert len({round(first, 9) for first, _ in engine}) >= 3  # the budget spread the first tokens out


def test_host_work_on_the_engine_core_lengthens_its_steps_while_it_is_busy() -> None:
    base = SimConfig("fifo", replicas=1, hop_s=0.003, submit_s=0.0)
    alone = [summ(Kind.summarization, 0.0, 10)]
    plain = simulate(alone, base).outcomes[0]
    assert plain.ttft_s is not None and plain.e2e_s is not None
    streamed = simulate(alone, dataclasses.replace(base, host_s_per_token=0.001)).outcomes[0]
    # each step carries the host's work for the tokens it streams: one a step, alone
    assert streamed.ttft_s == pytest.approx(plain.ttft_s + 0.001)
    assert streamed.e2e_s == pytest.approx(plain.e2e_s + 10 * 0.001)
    # a node's host work in the engine's idle time costs the engine nothing
    assert simulate(alone, dataclasses.replace(base, host_s_per_node=0.005)).outcomes[0].e2e_s == plain.e2e_s

    # a generation's three nodes all start while a long summarization decodes: the
    # summarization ends three nodes' host work later
    busy = [summ(Kind.summarization, 0.0, 300), summ(Kind.generation, 0.05, 5)]
    before = simulate(busy, base).outcomes
    after = simulate(busy, dataclasses.replace(base, host_s_per_node=0.005)).outcomes
    assert before[1].e2e_s is not None and before[1].e2e_s < 1.0 < (before[0].e2e_s or 0.0)
    assert after[0].e2e_s == pytest.approx((before[0].e2e_s or 0.0) + 3 * 0.005)
