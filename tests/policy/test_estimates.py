"""Service-time estimates: a node's cost, the unloaded speed, and the EWMA rule. Pure."""

from __future__ import annotations

import pytest

from cato_mq.graphs import GRAPHS
from cato_mq.policy.estimates import ALONE, alone, ewma, graph_costs
from cato_mq.schemas import Kind


def test_graph_costs_cut_the_ttft_path_at_the_streamed_call() -> None:
    costs = graph_costs({}, GRAPHS[Kind.generation], 100, "ttft")
    assert costs[2].path_s == 0.0
    assert costs[1].path_s < costs[1].full_s
    e2e = graph_costs({}, GRAPHS[Kind.generation], 100, "e2e")
    assert all(c.path_s == c.full_s for c in e2e)


def test_ewma_seeds_then_smooths() -> None:
    assert ewma(None, 3.0) == 3.0
    assert ewma(1.0, 2.0, alpha=0.2) == pytest.approx(1.2)


def test_alone_swaps_in_the_unloaded_llm_speed_where_published() -> None:
    live = {"llm:fixed": 0.5, "llm:per_token": 0.05, "retrieve:fixed": 0.001, ALONE + "llm:per_token": 0.01}
    assert alone(live) == {**live, "llm:per_token": 0.01}  # no published llm:fixed: the live one stays
