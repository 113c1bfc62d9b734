import math

from cato_mq.policy.tiers import (
    PRIORITY,
    PRIORITY_STEPS,
    SHORT_WORK_TOKENS,
    TIER_STEPS,
    Tier,
    decide_tier,
    engine_priority,
    expected_wait,
    long_work,
    message_priority,
)


def test_violated_once_the_deadline_passed() -> None:
    assert decide_tier(0.0, 0.0, 0.0) is Tier.violated
    assert decide_tier(-1.0, 0.0, 0.0) is Tier.violated


def test_at_risk_when_wait_plus_service_exceeds_slack() -> None:
    assert decide_tier(1.0, 0.6, 0.5) is Tier.at_risk
    assert decide_tier(1.0, 0.4, 0.5) is Tier.safe


def test_priorities_order_tiers() -> None:
    assert PRIORITY[Tier.violated] < PRIORITY[Tier.at_risk] < PRIORITY[Tier.safe]


def test_within_a_tier_ttft_nodes_go_first_then_short_work_and_every_tier_before_the_next() -> None:
    order = [message_priority(t, ttft, True, long) for t in Tier for ttft, long in ((True, False), (False, False),
                                                                                     (False, True))]
    assert order == sorted(order)  # violated ttft, violated short e2e, violated long e2e, at_risk ttft, ...
    for t in Tier:
        if t is not Tier.best_effort:
            assert message_priority(t, True) < message_priority(t, False) < message_priority(t, False, True, True)
            assert message_priority(t, True, True, True) == message_priority(t, True)  # TTFT: no split
    assert len({message_priority(Tier.best_effort, ttft, True, long) for ttft in (True, False)
                for long in (True, False)}) == 1
    assert set(order) == set(PRIORITY_STEPS)  # each has a Redis list of its own
    assert sorted(p for steps in TIER_STEPS.values() for p in steps) == list(PRIORITY_STEPS)  # one tier each
    # cato's tiers alone (and fifo): one step per tier
    assert {message_priority(t, ttft, within_tier=False) for t in Tier for ttft in (True, False)} == set(
        PRIORITY.values())


def test_long_work_is_more_than_a_short_answer_at_the_unloaded_speed() -> None:
    est = {"llm:fixed": 1.0, "llm:per_token": 1.0, "alone:llm:fixed": 0.1, "alone:llm:per_token": 0.01}
    short_s = 0.1 + SHORT_WORK_TOKENS * 0.01  # the worker's unloaded speed, not the loaded EWMA
    assert not long_work(short_s, est) and long_work(short_s + 0.001, est)
    assert long_work(1.0, {}) and not long_work(0.1, {})  # no worker yet: the defaults
    assert not long_work(None, est)  # a client before cato+: short, as before the split


def test_no_wait_while_slots_are_free() -> None:
    assert expected_wait(queued=2, inflight=5, slots=8, mean_service_s=1.0) == 0.0


def test_wait_grows_with_queue_beyond_free_slots() -> None:
    assert expected_wait(queued=3, inflight=8, slots=8, mean_service_s=1.0) == 0.5
    assert expected_wait(queued=7, inflight=8, slots=8, mean_service_s=1.0) == 1.0


def test_no_replicas_means_unbounded_wait() -> None:
    assert expected_wait(0, 0, 0, 1.0) == math.inf
    assert decide_tier(10.0, math.inf, 0.1) is Tier.at_risk


def test_engine_priority_orders_by_tier_then_deadline() -> None:
    now = 1_795_000_000.0
    order = [
        engine_priority("violated", now + 50),  # tier first: a later deadline, a better tier
        engine_priority("at_risk", now - 5),
        engine_priority("at_risk", now + 0.002),  # then the earliest deadline, to the ms
        engine_priority("at_risk", now + 0.004),
        engine_priority("safe", now),
        engine_priority("best_effort", now - 100),  # lost: last, however early its deadline
    ]
    assert order == sorted(order) and len(set(order)) == len(order)
    assert max(order) < 2**63  # vLLM carries it as an int64
    assert engine_priority("?", now) == engine_priority("safe", now)  # no tier known: safe
