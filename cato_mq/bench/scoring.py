"""Benchmark metrics, pure: the same code scores the simulator and the real runtime.

* **goodput**: share of requests that met their SLA (TTFT or E2E, per kind); a request
  that never finished did not meet it;
* **latency percentiles**: nearest rank (the smallest value with at least q of the sample
  at or below it), so every figure is a latency some request really had; an unfinished
  request counts as infinitely late rather than vanishing from the tail;
* **utilization**: busy replica-time / provisioned replica-time, where a replica is busy
  while at least one node runs on it (the union of its node intervals) and provisioned
  from its device being taken to its release (cold start and drain included: a device
  that loads a model is paid for);
* **goodput per replica-second**: requests that met their SLA per provisioned second.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

#: The percentiles the report shows.
QUANTILES = (0.50, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str
    ttft_s: float | None  # None: no token was streamed (unfinished or failed)
    e2e_s: float | None  # None: unfinished when the run ended
    met: bool
    nodes: int = 0
    node_misses: int = 0  # nodes that ended after their slack deadline


@dataclass(frozen=True, slots=True)
class Span:
    replica: str
    start: float
    end: float


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def quantiles(values: Sequence[float]) -> dict[str, float]:
    """``{"p50": .., "p95": .., "p99": ..}`` by nearest rank."""
    return {f"p{round(q * 100)}": percentile(values, q) for q in QUANTILES}


def goodput(outcomes: Sequence[Outcome]) -> float:
    return sum(o.met for o in outcomes) / len(outcomes) if outcomes else math.nan


def by_kind(outcomes: Iterable[Outcome]) -> dict[str, list[Outcome]]:
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        groups[o.kind].append(o)
    return dict(sorted(groups.items()))


def latencies(outcomes: Sequence[Outcome], which: str) -> dict[str, float]:
    """P50/P95/P99 of ``ttft`` or ``e2e``; unfinished requests count as infinite."""
    return quantiles([math.inf if v is None else v for v in (getattr(o, f"{which}_s") for o in outcomes)])


def union_length(intervals: Iterable[tuple[float, float]]) -> float:
    total, end = 0.0, -math.inf
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def replica_seconds(spans: Iterable[Span]) -> float:
    return sum(max(0.0, s.end - s.start) for s in spans)


def busy_seconds(busy: Iterable[Span]) -> float:
    """Per replica, the union of its node intervals (nodes overlap under batching)."""
    per: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for s in busy:
        per[s.replica].append((s.start, s.end))
    return sum(union_length(v) for v in per.values())


def utilization(busy: Iterable[Span], provisioned: Iterable[Span]) -> float:
    """Busy time inside the provisioned window over the replica-seconds paid. Work past the
    window (a peer's request still streaming after the run's horizon) is not in what was
    paid for, so it is not counted as busy either."""
    provisioned = list(provisioned)
    paid = replica_seconds(provisioned)
    if paid <= 0:
        return math.nan
    lo, hi = min(s.start for s in provisioned), max(s.end for s in provisioned)
    inside = [Span(s.replica, max(s.start, lo), min(s.end, hi)) for s in busy if s.end > lo and s.start < hi]
    return busy_seconds(inside) / paid


class Run(Protocol):
    """What a run yields for scoring: the simulator's ``SimResult`` and the real runtime's
    ``RuntimeRun`` alike."""

    @property
    def outcomes(self) -> Sequence[Outcome]: ...
    @property
    def provisioned(self) -> Sequence[Span]: ...
    @property
    def busy(self) -> Sequence[Span]: ...


def summarize_run(run: Run) -> dict[str, Any]:
    return summarize(run.outcomes, run.provisioned, run.busy)


def summarize(outcomes: Sequence[Outcome], provisioned: Sequence[Span], busy: Sequence[Span]) -> dict[str, Any]:
    """Every figure of one (system, workload) run, JSON-ready (infinities as None)."""
    rs = replica_seconds(provisioned)
    met = sum(o.met for o in outcomes)
    nodes = sum(o.nodes for o in outcomes)
    kinds = {
        k: {"requests": len(g), "goodput": goodput(g), "ttft": latencies(g, "ttft"), "e2e": latencies(g, "e2e")}
        for k, g in by_kind(outcomes).items()
    }
    out = {
        "requests": len(outcomes), "goodput": goodput(outcomes), "unfinished": sum(o.e2e_s is None for o in outcomes),
        "replica_s": rs, "utilization": utilization(busy, provisioned),
        "goodput_per_replica_s": met / rs if rs > 0 else math.nan,
        "violations_per_node": sum(o.node_misses for o in outcomes) / nodes if nodes else math.nan,
        "kinds": kinds,
    }
    finite: dict[str, Any] = _finite(out)
    return finite


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    return x
