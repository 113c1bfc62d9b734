"""Key and queue names, derived from the tier policy's one list of tiers."""

from __future__ import annotations

import re

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
    # a tier's own steps, then its bare name (what a publisher of kombu's defaults fills)
    assert keys.queue_lists("p", Tier.violated) == ["p.violated", "p.violated\x06\x161", "p.violated\x06\x162"]
    assert keys.queue_lists("p", Tier.at_risk) == [
        "p.at_risk\x06\x163", "p.at_risk\x06\x164", "p.at_risk\x06\x165", "p.at_risk"]
    assert keys.queue_lists("p", Tier.best_effort) == ["p.best_effort\x06\x169", "p.best_effort"]
    assert [keys.list_count(t) for t in keys.TIERS] == [3, 4, 4, 2]
    assert len(keys.backlog_lists("p")) == 13  # not one per step of every tier (40)


def test_a_tier_queue_maps_every_priority_onto_its_own_lists() -> None:
    # a publish and a pop must agree: another tier's priority stays in this tier's lists
    assert keys.priority_list("p.safe", 0) == keys.priority_list("p.safe", 6) == "p.safe\x06\x166"
    assert keys.priority_list("p.safe", 9) == keys.priority_list("p.safe", 8) == "p.safe\x06\x168"
    assert keys.priority_list("p.violated", 9) == "p.violated\x06\x162"
    # a queue that is no tier queue keeps every step
    assert keys.priority_list("celery", 3) == "celery\x06\x163" and keys.priority_list("celery", 0) == "celery"
    every = [keys.priority_list("celery", p) for p in keys.PRIORITY_STEPS]
    assert [name for _, name in keys.served_lists("celery")] == every


def test_a_node_task_id_matches_the_head_its_text_readers_look_for() -> None:
    rid = "0123456789abcdef" * 2
    for node_id in (keys.node_task_id(rid, 3, "llm"), keys.node_task_id(rid, 12, "llm", first_token=True)):
        head = re.match(keys.NODE_ID_HEAD_REGEX, node_id)
        assert head is not None and head.group(1) == rid == keys.request_of_task(node_id)
        assert node_id[head.end():] in ("llm", "llm" + keys.FIRST_TOKEN_TAG)
    assert re.match(keys.NODE_ID_HEAD_REGEX, f"{rid}-x-llm") is None  # the index is a number
