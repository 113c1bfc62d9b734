"""The vllm-cpu run's workload: the paper mix rescaled to the tiny model's speed."""

from __future__ import annotations

from cato_mq import corpus, goodput_vllm, workload
from cato_mq.goodput_plan import Plan


def test_requests_are_the_paper_mix_with_shorter_slas_and_prompts_that_fit() -> None:
    plan = Plan(vllm_rate=10.0, vllm_duration_s=5.0, time_scale=5.0)
    c = corpus.load(None)
    reqs = goodput_vllm.requests(c, plan)
    same = workload.paper_mix(c, plan.vllm_rate, plan.vllm_duration_s, plan.seed + 2)
    assert len(reqs) == len(same) > 10
    assert [r.at for r in reqs] == [r.at for r in same]
    assert all(abs(r.sla_s - s.sla_s / 5) < 1e-9 for r, s in zip(reqs, same, strict=True))
    assert all(len(r.prompt) <= goodput_vllm.MAX_PROMPT_CHARS for r in reqs)
    assert any(len(s.prompt) > goodput_vllm.MAX_PROMPT_CHARS for s in same)  # the cut does something
    assert goodput_vllm.requests(c, plan) == reqs  # seeded
