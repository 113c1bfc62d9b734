"""Service-time estimates: the seed never overwrites a live estimate; the unloaded speed does."""

from __future__ import annotations

import redis

from cato_mq.policy.estimates import ALONE
from cato_mq.state import keys
from cato_mq.state.estimates import EstimateStore


def test_seed_keeps_live_estimates_and_republishes_the_unloaded_speed(rds: redis.Redis) -> None:
    store = EstimateStore(rds)
    store.seed("default", {"llm:per_token": 0.006}, {"llm:per_token": 0.006})
    rds.hset(keys.estimates("default"), "llm:per_token", "0.02")  # the EWMA moved under load
    store.seed("default", {"llm:per_token": 0.006}, {"llm:per_token": 0.03})  # a slower engine joined
    assert rds.hgetall(keys.estimates("default")) == {"llm:per_token": "0.02", ALONE + "llm:per_token": "0.03"}
    assert rds.ttl(keys.estimates("default")) > 0
