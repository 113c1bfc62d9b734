"""The router's pool snapshot and the tier queue depths, shared with the provisioner."""

from __future__ import annotations

import redis

from cato_mq.policy.tiers import AHEAD, Tier
from cato_mq.state import keys
from cato_mq.state.pool import depths, parse_snapshot, queue_depths, read_pool, replies_for


def test_snapshot_skips_stale_and_draining_replicas() -> None:
    registry = {"a": "1 4 100.0 ready", "b": "2 4 100.0 draining", "c": "3 4 50.0", "d": "0 4 99.5"}
    snap = parse_snapshot([0] * 11, registry, {}, now=100.0, stale_s=1.0)
    assert (snap.replicas, snap.slots, snap.inflight) == (2, 8, 1)


def test_depths_sum_each_tiers_priority_lists() -> None:
    # violated: its TTFT, short and long E2E steps; at_risk and safe: theirs and the bare
    # queue name
    lengths = [1, 0, 0, 2, 3, 0, 0, 0, 0, 0, 4]
    assert depths(lengths, AHEAD) == {"violated": 1, "at_risk": 5, "safe": 4}
    assert depths([*lengths, 0, 5], keys.TIERS)["best_effort"] == 5
    assert replies_for(keys.TIERS) == 3 + 4 + 4 + 2


def test_queue_depths_count_messages_in_every_priority_list(rds: redis.Redis) -> None:
    lists = keys.queue_lists("default", Tier.at_risk)
    rds.rpush(lists[0], "x")
    rds.rpush(lists[-1], "y", "z")
    rds.rpush(keys.queue_lists("default", Tier.best_effort)[0], "w")
    pipe = rds.pipeline(transaction=False)
    queue_depths(pipe, "default", keys.TIERS)
    assert depths(pipe.execute(), keys.TIERS) == {"violated": 0, "at_risk": 3, "safe": 0, "best_effort": 1}
    # the router's snapshot does not count best effort: it is served after everything it places
    snap = read_pool(rds, "default", stale_s=1.0)
    assert snap.queued == {Tier.violated: 0, Tier.at_risk: 3, Tier.safe: 0}
