"""The issue's goals, checked against a benchmark's rows: met or not, with the figures.

* paper mix, highest load: cato+ goodput >= 1.25x the best baseline with no more
  replica-seconds; cato >= 1.10x; cato's and cato+'s utilization at least every baseline's;
* Azure replay with autoscaling: cato+ goodput above every baseline at no more
  replica-seconds than any of them.
"""

from __future__ import annotations

from typing import Any

#: The systems cato-mq is compared against (a real Ray Serve run would join them).
BASELINES = ("fifo", "queue-length", "round-robin", "ray-serve")


def _pick(rows: list[dict[str, Any]], workload: str) -> dict[str, dict[str, Any]]:
    mine = [r for r in rows if r["workload"] == workload and r["where"] == "sim"]
    if not mine:
        return {}
    top = max(r["load"] for r in mine)
    return {r["system"]: r["summary"] for r in mine if r["load"] == top}


def _goal(name: str, value: str, met: bool) -> dict[str, Any]:
    return {"goal": name, "value": value, "met": met}


def check(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    paper = _pick(rows, "paper")
    base = {s: v for s, v in paper.items() if s in BASELINES}
    if base and "cato" in paper and "cato+" in paper:
        best_name = max(base, key=lambda s: base[s]["goodput"] or 0.0)
        best = base[best_name]
        for system, factor in (("cato+", 1.25), ("cato", 1.10)):
            s = paper[system]
            ratio = (s["goodput"] or 0.0) / best["goodput"] if best["goodput"] else float("inf")
            cheaper = s["replica_s"] <= best["replica_s"] + 1e-6
            out.append(_goal(f"paper, top load: {system} goodput >= {factor}x best baseline ({best_name}), "
                             "no more replica-s", f"{ratio:.2f}x, replica-s {s['replica_s']:.0f} vs "
                             f"{best['replica_s']:.0f}", ratio >= factor and cheaper))
            # compared at the table's resolution (3 decimals): at saturation every system is
            # busy 0.999 of the time and the fourth decimal is noise
            util = min(v["utilization"] or 0.0 for v in base.values())
            top_util = max(v["utilization"] or 0.0 for v in base.values())
            out.append(_goal(f"paper, top load: {system} utilization >= baselines'",
                             f"{s['utilization']:.3f} vs {util:.3f}-{top_util:.3f}",
                             round(s["utilization"] or 0.0, 3) >= round(top_util, 3)))
    azure = _pick(rows, "azure")
    base = {s: v for s, v in azure.items() if s in BASELINES}
    if base and "cato+" in azure:
        s = azure["cato+"]
        above = all((s["goodput"] or 0) > (v["goodput"] or 0) for v in base.values())
        cheaper = all(s["replica_s"] <= v["replica_s"] + 1e-6 for v in base.values())
        figures = ", ".join(f"{k} {v['goodput']:.3f}/{v['replica_s']:.0f}" for k, v in base.items())
        out.append(_goal("Azure replay: cato+ goodput above every baseline at no more replica-s",
                         f"cato+ {s['goodput']:.3f}/{s['replica_s']:.0f} (goodput/replica-s); {figures}",
                         above and cheaper))
    return out
