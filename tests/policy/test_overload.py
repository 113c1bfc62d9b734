from __future__ import annotations

import math

from cato_mq.policy.overload import MAX_RETRY_AFTER_S, MIN_RETRY_AFTER_S, over, retry_after_s


def test_over_counts_against_the_limit_and_zero_is_no_bound() -> None:
    assert not over(9, 10) and over(10, 10) and over(11, 10)
    assert not over(10**9, 0)


def test_retry_after_is_the_time_to_drain_the_excess_in_whole_seconds() -> None:
    # 10 over the bound (+1 for this request), 4 slots, 2 s a node: ceil(11 * 2 / 4) = 6
    assert retry_after_s(20, 10, 4, 2.0) == 6.0
    assert retry_after_s(10, 10, 4, 0.1) == MIN_RETRY_AFTER_S
    assert retry_after_s(10_000, 10, 1, 5.0) == MAX_RETRY_AFTER_S


def test_no_slots_or_no_estimate_advises_the_longest_wait() -> None:
    assert retry_after_s(20, 10, 0, 1.0) == MAX_RETRY_AFTER_S
    assert retry_after_s(20, 10, 4, math.inf) == MAX_RETRY_AFTER_S
