"""The vllm-cpu run: its workload (the paper mix rescaled to the tiny model's speed), and
its rounds on the real engine."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from cato_mq.bench import corpus, workload
from cato_mq.bench.goodput import goals, report, runtime, vllm_cpu
from cato_mq.bench.goodput.plan import Plan, Report


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



def test_the_peers_the_goal_reads_are_the_variants_the_bench_runs() -> None:
    from cato_mq.bench import vllm_serve
    from cato_mq.bench.goodput.plan import VLLM_PEERS

    assert tuple(vllm_serve.VARIANTS) == VLLM_PEERS

@pytest.mark.vllm
def test_rounds_run_each_chosen_system_once_a_round_and_the_goal_reads_their_mean(
    rds: redis.Redis, redis_url: str, tmp_path: Path,
) -> None:
    """``bench-goodput --vllm --vllm-rounds 2 --vllm-systems cato+,vllm-fcfs`` on the real
    engine, at a light load: the profile, then per round cato+ on a cato-mq vLLM worker and
    vllm-fcfs on `vllm serve`; the simulator once."""
    pytest.importorskip("vllm")
    plan = Plan(vllm=True, vllm_rates=(2.0,), vllm_duration_s=2.0, vllm_rounds=2,
                vllm_systems=("cato+", "vllm-fcfs"), tail_s=30.0)
    rep = Report()
    bar = report.Progress(1 + 2 * 2)
    runtime.vllm(plan, corpus.load(None), rep, bar, redis_url)
    assert not [n for n in rep.notes if "failed" in n], rep.notes
    real = [(r["system"], r["round"]) for r in rep.rows if r["where"] == "runtime"]
    assert real == [("cato+", 1), ("vllm-fcfs", 1), ("cato+", 2), ("vllm-fcfs", 2)]
    assert sorted(r["system"] for r in rep.rows if r["where"] == "sim") == ["cato+", "round-robin"]
    # each real run metered: the engine's processes found apart from the host's, and the work
    for r in rep.rows:
        if r["where"] == "runtime":
            cpu = r["cpu"]
            assert cpu["engine_s"] > 0 and cpu["host_s"] > 0 and cpu["nodes"] > 0 and cpu["tokens"] > 0, r
    assert any("fitted to the real runs: cato-mq " in n and "; vllm serve " in n for n in rep.notes), rep.notes
    assert bar.done == bar.total
    # every real run against the one simulation of its system: one line per round
    assert [v["system"] for v in rep.validation] == [
        f"{name} on vllm-cpu at 2 req/s, round {n}" for n in (1, 2) for name in ("cato+", "round-robin vs vllm-fcfs")]
    [goal] = [g for g in goals.check(rep.rows) if g["goal"].startswith("vllm-cpu")]
    assert "(vllm-fcfs)" in goal["goal"] and goal["value"].startswith("mean of 2 rounds ")
    md = report.markdown(plan, rep, [goal])
    assert "| vllm | 2.0 | cato+ (runtime, round 2) |" in md and "| vllm | 2.0 | cato+ (sim) |" in md
