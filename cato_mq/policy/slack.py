"""Slack allotment: CATO's Profiler rule, per-node deadlines from a request's SLA. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NodeCost:
    """Estimated seconds of one node.

    ``full_s`` is the whole node; ``path_s`` the part that counts against the SLA: all of
    it under an E2E SLA; under a TTFT SLA, everything before the streamed call, that call's
    time to first token, and nothing after it.
    """

    full_s: float
    path_s: float


@dataclass(frozen=True, slots=True)
class NodeBudget:
    budget_s: float  # slack allotted to the node (its share of the SLA)
    deadline: float  # wall time by which the node's SLA-relevant part must be done
    expect_s: float  # service the router should expect before that deadline


def allot(sla_s: float, costs: Sequence[NodeCost]) -> list[float]:
    """Split the SLA over nodes in proportion to their baselines.

    CATO's rule: slack along the critical path sums to the SLA (5 s, 15 s, 5 s under a 50 s
    SLA get 10 s, 30 s, 10 s). Nodes off the SLA path are scaled by the same factor, so a
    TTFT request's later nodes still get proportionate deadlines.
    """
    if sla_s <= 0:
        raise ValueError(f"SLA must be positive, got {sla_s}")
    path = sum(c.path_s for c in costs)
    if path <= 0:
        raise ValueError("the SLA path has no cost: at least one node must count against it")
    scale = sla_s / path
    return [c.full_s * scale for c in costs]


def budgets(start: float, sla_s: float, costs: Sequence[NodeCost]) -> list[NodeBudget]:
    """Per-node deadlines from the request's start time (wall clock)."""
    shares = allot(sla_s, costs)
    scale = sla_s / sum(c.path_s for c in costs)
    out: list[NodeBudget] = []
    elapsed = 0.0
    for cost, share in zip(costs, shares, strict=True):
        partial = 0.0 < cost.path_s < cost.full_s  # the streamed call under a TTFT SLA
        due = elapsed + (cost.path_s * scale if partial else share)
        out.append(NodeBudget(share, start + due, cost.path_s if partial else cost.full_s))
        elapsed += share
    return out


def remaining(costs: Sequence[NodeCost]) -> list[float]:
    """SLA-path seconds from each node to the end: what is left of the request there."""
    out, total = [0.0] * len(costs), 0.0
    for i in range(len(costs) - 1, -1, -1):
        total += costs[i].path_s
        out[i] = total
    return out
