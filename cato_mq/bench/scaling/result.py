"""What one ``bench-scaling`` run of a policy yields (``PolicyRun``), the settings every
fleet of the benchmark shares, and the table of runs with their medians."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from cato_mq.bench.scaling.load import Load

#: Autoscaled policies; ``fifo@N`` (a static fleet) is accepted as well.
POLICIES = ("cato", "cato+", "queue_length", "ray-serve")
#: CPU "devices" of the two agents: the fleet's maximum.
DEVICES = 3
#: Replica-seconds are counted until this long after the last arrival.
TAIL_S = 20.0
TIME_SCALE = 5.0  # the sim engine runs 5x slower than the tiny model: one replica ~3.5 req/s
#: The profile's cold start; the sim engine scales it too, so a replica loads in 2 s.
COLD_START_S = 0.4
CONCURRENCY = 4

@dataclass
class PolicyRun:
    policy: str
    run: str
    requests: int
    goodput: float
    reaction_s: float | None
    load_s: float | None
    replica_s: float
    utilization: float
    peak: int


def table(outcomes: list[PolicyRun], factor: float, work: Load) -> str:
    lines = [
        f"Workload: {work.about}; 3 CPU \"devices\" on 2 agents, "
        f"min 1 / max 3 replicas, sim engine x{TIME_SCALE:g} slower, batch {CONCURRENCY}, cold start "
        f"{COLD_START_S * TIME_SCALE:g} s; queue-length baseline: target 2 ongoing/replica, up/down delays "
        f"{30 / factor:g} s / {600 / factor:g} s (Ray Serve's 30 s / 600 s divided by {factor:g}).",
        "",
        "| policy | run | goodput | reaction (s, excl. load) | load (s) | replica-seconds | utilization "
        "| peak replicas |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = list(outcomes)
    policies = list(dict.fromkeys(o.policy for o in outcomes))
    if len(outcomes) > len(policies):
        rows += [median([o for o in outcomes if o.policy == p]) for p in policies]
    for o in rows:
        react = "-" if o.reaction_s is None else f"{o.reaction_s:.2f}"
        load = "-" if o.load_s is None else f"{o.load_s:.2f}"
        lines.append(f"| {o.policy} | {o.run} | {o.goodput:.1%} | {react} | {load} | {o.replica_s:.1f} | "
                     f"{o.utilization:.1%} | {o.peak} |")
    return "\n".join(lines)


def median(runs: list[PolicyRun]) -> PolicyRun:
    """Each figure's median over the runs of one policy (of two runs: their mean)."""

    def med(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    return PolicyRun(
        runs[0].policy, "median", runs[0].requests, statistics.median(o.goodput for o in runs),
        med([o.reaction_s for o in runs]), med([o.load_s for o in runs]),
        statistics.median(o.replica_s for o in runs), statistics.median(o.utilization for o in runs),
        max(o.peak for o in runs),
    )
