"""Metric computations against hand-computed figures."""

from __future__ import annotations

import math

import pytest

from cato_mq.bench import scoring
from cato_mq.bench.scoring import Outcome, Span


def test_goodput_overall_and_per_kind() -> None:
    outs = [Outcome("completion", 0.1, 0.5, True), Outcome("completion", 2.0, 3.0, False),
            Outcome("translation", None, 9.0, True), Outcome("translation", None, None, False)]
    assert scoring.goodput(outs) == 0.5
    kinds = scoring.summarize(outs, [], [])["kinds"]
    assert kinds["completion"]["goodput"] == 0.5 and kinds["translation"]["goodput"] == 0.5


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert scoring.percentile(values, 0.50) == 10.0  # ceil(0.5 * 20) = 10th value
    assert scoring.percentile(values, 0.95) == 19.0
    assert scoring.percentile(values, 0.99) == 20.0
    assert math.isnan(scoring.percentile([], 0.5))


def test_unfinished_requests_are_infinitely_late_not_dropped() -> None:
    outs = [Outcome("summarization", 0.2, 1.0, True), Outcome("summarization", None, None, False)]
    assert scoring.latencies(outs, "e2e") == {"p50": 1.0, "p95": math.inf, "p99": math.inf}
    s = scoring.summarize(outs, [], [])
    assert s["kinds"]["summarization"]["e2e"]["p95"] is None  # JSON-ready
    assert s["unfinished"] == 1


def test_utilization_from_a_replica_timeline() -> None:
    # r0 provisioned 0-10 s, busy 1-3 and 2-5 (overlap: 4 s) and 8-9 (1 s) -> 5 s
    # r1 provisioned 5-10 s, busy 6-7 -> 1 s; total busy 6 of 15 replica-seconds
    provisioned = [Span("r0", 0, 10), Span("r1", 5, 10)]
    busy = [Span("r0", 1, 3), Span("r0", 2, 5), Span("r0", 8, 9), Span("r1", 6, 7)]
    assert scoring.replica_seconds(provisioned) == 15
    assert scoring.busy_seconds(busy) == 6
    assert scoring.utilization(busy, provisioned) == pytest.approx(0.4)
    # work past the run's horizon (a request still streaming) was not paid for: not busy
    late = [*busy, Span("r1", 9, 30), Span("r1", 12, 40)]
    assert scoring.utilization(late, provisioned) == pytest.approx(7 / 15)


def test_union_length_merges_nested_and_touching_intervals() -> None:
    assert scoring.union_length([(0, 4), (1, 2), (4, 6), (10, 11)]) == 7


def test_goodput_per_replica_second_and_violations_per_node() -> None:
    outs = [Outcome("generation", 0.5, 2.0, True, nodes=3, node_misses=0),
            Outcome("generation", 3.0, 5.0, False, nodes=3, node_misses=2),
            Outcome("completion", 0.2, 0.4, True, nodes=2, node_misses=1)]
    s = scoring.summarize(outs, [Span("r0", 0, 4)], [Span("r0", 0, 1)])
    assert s["goodput_per_replica_s"] == 0.5  # 2 met / 4 replica-s
    assert s["violations_per_node"] == pytest.approx(3 / 8)
    assert s["utilization"] == 0.25
