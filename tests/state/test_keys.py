"""Key and queue names, derived from the tier policy's one list of tiers."""

from __future__ import annotations

from cato_mq.policy.tiers import PRIORITY, Tier
from cato_mq.state import keys


def test_tier_queues_in_service_order_and_back() -> None:
    assert keys.tier_queues("p") == ["p.violated", "p.at_risk", "p.safe", "p.best_effort"]
    assert [keys.tier_of(q) for q in keys.tier_queues("p")] == [t.value for t in Tier]
    assert keys.tier_of("a.b-c.safe") == "safe"  # the tier is what follows the last dot


def test_each_tier_priority_has_its_own_kombu_list() -> None:
    assert set(PRIORITY.values()) < set(keys.PRIORITY_STEPS)  # and cato+'s E2E step of each tier
    names = [keys.priority_list("q", step) for step in keys.PRIORITY_STEPS]
    assert len(set(names)) == len(names)  # no two message priorities share a list
    lists = keys.queue_lists("p", Tier.at_risk)
    assert lists[0] == "p.at_risk" and all(q.startswith("p.at_risk\x06\x16") for q in lists[1:])
    assert len(lists) == len(keys.PRIORITY_STEPS)
