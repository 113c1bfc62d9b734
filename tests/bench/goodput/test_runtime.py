"""Scoring the simulator against a real engine on the same workload."""

from __future__ import annotations

from cato_mq.bench.goodput import runtime
from cato_mq.bench.scoring import Outcome, Span, summarize


def test_compare_reports_gaps_in_points_and_percent() -> None:
    real = summarize([Outcome("summarization", 0.1, 1.0, True), Outcome("summarization", 0.1, 2.0, False)],
                     [Span("r", 0, 1)], [])
    sim = summarize([Outcome("summarization", 0.1, 1.0, True), Outcome("summarization", 0.1, 2.1, True)],
                    [Span("r", 0, 1)], [])
    v = runtime.compare("cato", real, sim)
    assert v["goodput_gap_points"] == 50.0
    assert abs(v["p95_gaps"]["summarization e2e"] - 0.05) < 1e-9
    assert not v["within_goal"]
