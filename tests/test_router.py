"""The router: the pure decision on a snapshot, and the Celery router reading real Redis."""

from __future__ import annotations

import time

import pytest
import redis

from cato_mq.policy.tiers import PoolSnapshot, Tier, tier_for
from cato_mq.router import NODE_TASK, observer, route
from cato_mq.state import keys


def snap(queued: int = 0, inflight: int = 0, slots: int = 4, node_s: float = 1.0) -> PoolSnapshot:
    return PoolSnapshot({Tier.safe: queued, Tier.at_risk: 0, Tier.violated: 0}, 1, slots, inflight, {"node": node_s})


def test_tier_for_uses_deadline_queue_and_slots() -> None:
    now = 100.0
    assert tier_for(snap(), now - 1, 0.1, now) is Tier.violated
    assert tier_for(snap(), now + 1, 0.5, now) is Tier.safe
    assert tier_for(snap(queued=8, inflight=4), now + 1, 0.5, now) is Tier.at_risk  # waits 2.25 s
    assert tier_for(snap(slots=0), now + 100, 0.1, now) is Tier.at_risk  # no replica: cannot meet it


def test_other_tasks_are_left_to_celery() -> None:
    assert route("celery.ping", (), {}, {}) is None


def _live_replica(client: redis.Redis, inflight: int, concurrency: int) -> None:
    client.hset(keys.replicas("default"), "w1@h", f"{inflight} {concurrency} {time.time()}")


def test_route_reads_live_queue_depth_from_redis(rds: redis.Redis) -> None:
    _live_replica(rds, inflight=2, concurrency=2)
    rds.hset(keys.estimates("default"), "node", "0.5")
    kwargs = {"pool": "default", "deadline": time.time() + 1.0, "expect": 0.2}
    assert route(NODE_TASK, (), kwargs, {}) == {"queue": "default.safe", "priority": 6}

    # five nodes queued behind two busy slots: about 1.5 s of waiting, over the 1 s slack
    rds.rpush(keys.queue_lists("default", "safe")[1], *["m"] * 5)
    observer().invalidate()
    kwargs["deadline"] = time.time() + 1.0
    assert route(NODE_TASK, (), kwargs, {}) == {"queue": "default.at_risk", "priority": 3}

    kwargs["deadline"] = time.time() - 0.01
    assert route(NODE_TASK, (), kwargs, {}) == {"queue": "default.violated", "priority": 0}


def test_stale_and_draining_replicas_do_not_count(rds: redis.Redis) -> None:
    rds.hset(keys.replicas("default"), "dead@h", f"0 4 {time.time() - 60}")
    snapshot = observer().pool("default")
    assert snapshot.replicas == 0 and snapshot.slots == 0


def test_snapshot_is_one_round_trip_and_cached(rds: redis.Redis) -> None:
    _live_replica(rds, 0, 4)
    obs = observer()

    def commands() -> int:
        return int(rds.info("stats")["total_commands_processed"])

    obs.pool("default")  # connect first: a new connection sends handshake commands
    obs.invalidate()
    idle = -commands() + commands()  # what reading the counter itself costs
    before = commands()
    first = obs.pool("default")
    second = obs.pool("default")
    after = commands()
    assert first is second
    # one LLEN per list of the three tiers a node may wait behind (3 + 4 + 4), and 2
    # HGETALLs, pipelined
    assert after - before - idle == 11 + 2


def test_fifo_routing_by_configuration_puts_every_node_in_the_safe_tier(
    rds: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cato_mq import app as cato_app

    monkeypatch.setenv("CATO_ROUTING", "fifo")
    cato_app.reset()
    kwargs = {"pool": "default", "deadline": time.time() - 5.0, "expect": 0.2}  # violated under cato
    assert route(NODE_TASK, (), kwargs, {}) == {"queue": "default.safe", "priority": 6}
    monkeypatch.delenv("CATO_ROUTING")
    cato_app.reset()
    assert route(NODE_TASK, (), kwargs, {})["queue"] == "default.violated"  # type: ignore[index]


def test_cato_plus_sends_lost_nodes_to_best_effort(rds: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    from cato_mq import app as cato_app

    monkeypatch.setenv("CATO_ROUTING", "cato+")
    cato_app.reset()
    now = time.time()
    _live_replica(rds, inflight=0, concurrency=4)
    feasible = {"pool": "default", "deadline": now + 5.0, "expect": 0.2, "due": now + 5.0, "rest": 1.0}
    hopeless = {**feasible, "rest": 10.0}  # 10 s of work left alone, 5 s to go
    decided = {**feasible, "rest": 0.0}  # a TTFT request past its first token
    late = {**feasible, "deadline": now - 1.0}  # node late, request still feasible: violated
    # within its tier, a node of an E2E request waits behind TTFT ones: one step with short
    # work left, two with long (1 s of work left, where 32 tokens at the pool's unloaded
    # speed take 0.01 + 32 x 0.01 = 0.33 s)
    rds.hset(keys.estimates("default"), mapping={"alone:llm:fixed": 0.01, "alone:llm:per_token": 0.01})
    observer().invalidate()
    assert route(NODE_TASK, (), feasible, {}) == {"queue": "default.safe", "priority": 8}
    assert route(NODE_TASK, (), {**feasible, "rest": 0.3}, {}) == {"queue": "default.safe", "priority": 7}
    assert route(NODE_TASK, (), {**feasible, "ttft": True}, {}) == {"queue": "default.safe", "priority": 6}
    assert route(NODE_TASK, (), hopeless, {}) == {"queue": "default.best_effort", "priority": 9}
    assert route(NODE_TASK, (), decided, {}) == {"queue": "default.best_effort", "priority": 9}
    assert route(NODE_TASK, (), late, {})["queue"] == "default.violated"  # type: ignore[index]
    older = {**late, "due": None, "rest": None}  # from a client before cato+: tiered as under cato
    assert route(NODE_TASK, (), older, {})["queue"] == "default.violated"  # type: ignore[index]
    monkeypatch.setenv("CATO_ROUTING", "cato")
    cato_app.reset()
    assert route(NODE_TASK, (), hopeless, {})["queue"] == "default.safe"  # type: ignore[index]
    assert route(NODE_TASK, (), feasible, {})["priority"] == 6  # type: ignore[index]  # CATO's tiers alone


def test_cato_plus_sends_a_ttft_node_to_be_shed_to_the_violated_tier(
    rds: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cato_mq import app as cato_app

    monkeypatch.setenv("CATO_ROUTING", "cato+")
    cato_app.reset()
    now = time.time()
    _live_replica(rds, inflight=0, concurrency=4)
    hopeless = {"pool": "default", "deadline": now + 5.0, "expect": 0.2, "due": now + 5.0, "rest": 10.0}
    # shed (the default): popped at once and ended by the worker, not left behind all work
    assert route(NODE_TASK, (), {**hopeless, "ttft": True}, {})["queue"] == "default.violated"  # type: ignore[index]
    assert route(NODE_TASK, (), hopeless, {})["queue"] == "default.best_effort"  # type: ignore[index]  # E2E
    monkeypatch.setenv("CATO_ON_LOST", "serve")
    cato_app.reset()
    assert route(NODE_TASK, (), {**hopeless, "ttft": True}, {})["queue"] == "default.best_effort"  # type: ignore[index]
