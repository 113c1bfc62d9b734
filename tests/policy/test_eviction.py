"""The CACE-style keep score: its direction, and that it beats LRU on scripted demand."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cato_mq.policy.eviction import PoolFeatures, keep_score, lru_victim, pick_victim

BASE = PoolFeatures(load_s=10.0, sensitivity=0.5, node_s=1.0, recent_rate=1.0, expected=2.0)


@pytest.mark.parametrize("field", ["load_s", "sensitivity", "node_s", "recent_rate", "expected"])
def test_more_of_any_factor_means_more_worth_keeping(field: str) -> None:
    more = replace(BASE, **{field: getattr(BASE, field) * 2})
    assert keep_score(more) > keep_score(BASE)
    assert pick_victim({"base": BASE, "more": more}) == "base"  # the LOWEST score is evicted


def test_demand_counts_per_replica() -> None:
    assert keep_score(replace(BASE, replicas=4)) < keep_score(BASE)


def test_no_candidates_no_victim() -> None:
    assert pick_victim({}) is None and lru_victim({}) is None


# Scripted demand: two devices, three pools. "chat" is an interactive pool with a slow
# model load, used every fourth step; two cheap batch pools take turns in between.
POOLS = {
    "chat": dict(load_s=40.0, sensitivity=1.0, node_s=0.3),
    "batch_a": dict(load_s=3.0, sensitivity=0.0, node_s=2.0),
    "batch_b": dict(load_s=3.0, sensitivity=0.0, node_s=2.0),
}
DEMAND = ["chat", "batch_a", "batch_b", "batch_a"] * 2 + ["chat", "batch_b", "batch_a", "batch_b"] * 3
WINDOW = 4  # steps of history (recent demand) and of look-ahead (expected demand)


def simulate(policy: str, slots: int = 2) -> tuple[float, int]:
    """Replay DEMAND; return (seconds spent loading models, number of evictions)."""
    loaded: list[str] = []
    last_used: dict[str, float] = {}
    load_seconds, evictions = 0.0, 0
    for t, pool in enumerate(DEMAND):
        if pool not in loaded:
            if len(loaded) == slots:
                if policy == "lru":
                    victim = lru_victim({p: last_used[p] for p in loaded})
                else:
                    feats = {
                        p: PoolFeatures(
                            **POOLS[p],  # type: ignore[arg-type]
                            recent_rate=DEMAND[max(0, t - WINDOW):t].count(p) / WINDOW,
                            expected=DEMAND[t + 1:t + 1 + WINDOW].count(p),
                        )
                        for p in loaded
                    }
                    victim = pick_victim(feats)
                assert victim is not None
                loaded.remove(victim)
                evictions += 1
            loaded.append(pool)
            load_seconds += float(POOLS[pool]["load_s"])  # type: ignore[arg-type]
        last_used[pool] = t
    return load_seconds, evictions


def test_score_keeps_the_expensive_interactive_model_where_lru_evicts_it() -> None:
    lru_load, _ = simulate("lru")
    cace_load, _ = simulate("cace")
    # LRU reloads the 40 s model before nearly every use (221 s of loading); the score
    # loads it once and lets the 3 s batch models take turns (76 s), at one more eviction
    assert cace_load == 40.0 + 12 * 3.0 and lru_load > 2.5 * cace_load
    # the concrete choice: chat used 3 steps ago vs batch_a used just now, batch_b asked for
    feats = {
        "chat": PoolFeatures(40.0, 1.0, 0.3, recent_rate=0.25, expected=1),
        "batch_a": PoolFeatures(3.0, 0.0, 2.0, recent_rate=0.5, expected=1),
    }
    assert lru_victim({"chat": 0, "batch_a": 1}) == "chat"
    assert pick_victim(feats) == "batch_a"
