"""CATO's slack allotment: per-node deadlines from a request's SLA."""

import pytest

from cato_mq.graphs import GRAPHS
from cato_mq.policy.estimates import graph_costs
from cato_mq.policy.slack import NodeCost, allot, budgets, remaining
from cato_mq.schemas import Kind


def test_cato_example_allotment() -> None:
    costs = [NodeCost(5, 5), NodeCost(15, 15), NodeCost(5, 5)]
    assert allot(50, costs) == pytest.approx([10, 30, 10])


def test_e2e_deadlines_accumulate_to_the_sla() -> None:
    plan = budgets(100.0, 50, [NodeCost(5, 5), NodeCost(15, 15), NodeCost(5, 5)])
    assert [b.deadline for b in plan] == pytest.approx([110, 140, 150])
    assert [b.expect_s for b in plan] == pytest.approx([5, 15, 5])


def test_ttft_deadline_covers_only_up_to_first_token() -> None:
    # retrieve 0.1 s, llm: 0.1 s to first token of 1.0 s total, validate 0.1 s (off the TTFT path)
    costs = [NodeCost(0.1, 0.1), NodeCost(1.0, 0.1), NodeCost(0.1, 0.0)]
    plan = budgets(0.0, 2.0, costs)  # path 0.2 s -> scale 10
    assert plan[0].deadline == pytest.approx(1.0)
    assert plan[1].deadline == pytest.approx(2.0)  # the first token is due at the SLA
    assert plan[1].expect_s == pytest.approx(0.1)
    assert plan[2].deadline == pytest.approx(1.0 + 10.0 + 1.0)  # later nodes scaled alike


def test_bad_sla_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        allot(0, [NodeCost(1, 1)])


def test_every_node_budget_covers_its_dispatch() -> None:
    """A 20 us step still gets a deadline it can meet after a broker hop."""
    from cato_mq.policy.estimates import DISPATCH_S

    costs = graph_costs({"retrieve:fixed": 2e-5}, GRAPHS[Kind.completion], 64, "ttft")
    plan = budgets(0.0, 1.0, costs)
    assert plan[0].budget_s > DISPATCH_S


def test_remaining_sums_the_sla_path_from_each_node() -> None:
    costs = [NodeCost(1.0, 1.0), NodeCost(5.0, 0.5), NodeCost(2.0, 0.0)]  # a TTFT graph
    assert remaining(costs) == [1.5, 0.5, 0.0]
