"""The parts of ``bench-goodput`` on real engines, each beside the simulator on the same
workload: the runtime checks (Redis, worker processes, sim engine), real Ray Serve, and
vllm-cpu; ``compare`` scores the simulator against them (the validation goal: goodput
within 3 points, P95 within 10 %)."""

from __future__ import annotations

from typing import Any

from cato_mq.bench import corpus, workload
from cato_mq.bench.goodput import report
from cato_mq.bench.goodput.plan import RUNTIME_SYSTEMS, Plan, Report, rounds_in, row, summary
from cato_mq.sim.model import SimConfig
from cato_mq.sim.simulator import simulate


def runtime(
    plan: Plan, reqs: list[workload.Request], name: str, load: float, rep: Report, bar: report.Progress,
    redis_url: str | None,
) -> None:
    """Every runtime system on ``reqs``, real and simulated, as ``name`` rows."""
    from cato_mq.bench import runtime

    for system in RUNTIME_SYSTEMS:
        rt = runtime.run(reqs, system, plan.rt_replicas, plan.rt_slots, plan.time_scale, plan.tail_s,
                               redis_url=redis_url)
        real = summary(rt)
        rep.rows.append(row(name, load, system, "runtime", real))
        bar.step(f"{name} {system}")
        cfg = SimConfig(system, plan.rt_replicas, plan.rt_slots, time_scale=plan.time_scale, tail_s=plan.tail_s,
                        seed=plan.seed)
        res = simulate(reqs, cfg)
        sim = summary(res)
        rep.rows.append(row(name, load, system, "sim", sim))
        rep.validation.append(compare(system if name == "runtime-check" else f"{system} ({name})", real, sim,
                                      rt.late_submits))
        bar.step(f"sim of {name} {system}")


def ray(plan: Plan, reqs: list[workload.Request], rep: Report, bar: report.Progress) -> None:
    """Real Ray Serve, static, on the same workload; its model in the simulator is the
    queue-length system (power of two choices) with the same static fleet."""
    try:
        from cato_mq.bench import ray_serve

        rt = ray_serve.run(reqs, plan.rt_replicas, plan.rt_slots, plan.time_scale, plan.tail_s)
    except Exception as exc:  # an optional peer: say what failed, keep the rest of the report
        rep.notes.append(f"Ray Serve run failed: {type(exc).__name__}: {exc}")
        return
    real = summary(rt)
    rep.rows.append(row("runtime-check", plan.rt_rate, "ray-serve", "runtime", real))
    bar.step("ray serve")
    cfg = SimConfig("queue-length", plan.rt_replicas, plan.rt_slots, time_scale=plan.time_scale, tail_s=plan.tail_s,
                    seed=plan.seed)
    sim = summary(simulate(reqs, cfg))
    rep.rows.append(row("runtime-check", plan.rt_rate, "queue-length", "sim", sim))
    rep.validation.append(compare("queue-length vs real Ray Serve", real, sim, rt.late_submits))
    bar.step("sim of ray serve")


def vllm(plan: Plan, c: corpus.Corpus, rep: Report, bar: report.Progress, redis_url: str | None) -> None:
    from cato_mq.bench.goodput import vllm_cpu

    try:
        rows, profile_note = vllm_cpu.run(plan, c, bar.step, redis_url)
    except Exception as exc:  # needs the [cpu] extra: say what failed, keep the rest of the report
        rep.notes.append(f"vllm-cpu run failed: {type(exc).__name__}: {exc}")
        return
    rep.rows += rows
    rep.notes.append(profile_note)
    # the simulator's round-robin is its model of vLLM alone behind a round-robin proxy
    sims = {(r["system"], r["load"]): r for r in rows if r["where"] == "sim"}
    rounds = rounds_in(rows)
    for r in rows:
        modelled = "round-robin" if r["system"] == "vllm-fcfs" else r["system"]
        twin = sims.get((modelled, r["load"]))
        if r["where"] == "runtime" and twin is not None:
            name = modelled if modelled == r["system"] else f"{modelled} vs {r['system']}"
            which = f", round {r['round']}" if rounds > 1 else ""
            rep.validation.append(compare(f"{name} on vllm-cpu at {r['load']:g} req/s{which}", r["summary"],
                                          twin["summary"], r["late_submits"]))


def compare(system: str, real: dict[str, Any], sim: dict[str, Any], late: int = 0) -> dict[str, Any]:
    """Goodput gap in points and relative P95 gaps per kind (the validation goals)."""
    gaps: dict[str, float | None] = {}
    for kind, k in real["kinds"].items():
        which = "ttft" if kind in ("completion", "generation") else "e2e"
        r, s = k[which]["p95"], sim["kinds"].get(kind, {}).get(which, {}).get("p95")
        gaps[f"{kind} {which}"] = None if not r or s is None else (s - r) / r
    points = 100 * abs((sim["goodput"] or 0) - (real["goodput"] or 0))
    ok = points <= 3 and all(g is not None and abs(g) <= 0.10 for g in gaps.values())
    return {"system": system, "goodput_real": real["goodput"], "goodput_sim": sim["goodput"],
            "goodput_gap_points": points, "p95_gaps": gaps, "late_submits": late, "within_goal": ok}
