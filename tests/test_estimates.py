"""Service-time estimates: the seed never overwrites a live estimate; the unloaded speed does."""

from __future__ import annotations

import redis

from cato_mq import keys
from cato_mq.estimates import ALONE, EstimateStore, alone


def test_alone_swaps_in_the_unloaded_llm_speed_where_published() -> None:
    live = {"llm:fixed": 0.5, "llm:per_token": 0.05, "retrieve:fixed": 0.001, ALONE + "llm:per_token": 0.01}
    assert alone(live) == {**live, "llm:per_token": 0.01}  # no published llm:fixed: the live one stays


def test_seed_keeps_live_estimates_and_republishes_the_unloaded_speed(rds: redis.Redis) -> None:
    store = EstimateStore(rds)
    store.seed("default", {"llm:per_token": 0.006}, {"llm:per_token": 0.006})
    rds.hset(keys.estimates("default"), "llm:per_token", "0.02")  # the EWMA moved under load
    store.seed("default", {"llm:per_token": 0.006}, {"llm:per_token": 0.03})  # a slower engine joined
    assert rds.hgetall(keys.estimates("default")) == {"llm:per_token": "0.02", ALONE + "llm:per_token": "0.03"}
    assert rds.ttl(keys.estimates("default")) > 0
