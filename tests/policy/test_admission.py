"""SABER-style admission rule."""

from __future__ import annotations

import math

from cato_mq.policy import admission


def speed(n: int) -> float:
    return 100.0 / n  # tokens/s each of n concurrent requests gets


def test_required_speed() -> None:
    assert admission.required_speed(100, 4.0) == 25.0
    assert admission.required_speed(0, -1.0) == 0.0  # owes nothing: needs nothing
    assert admission.required_speed(5, 0.0) == math.inf


def test_admits_only_while_every_running_request_keeps_its_speed() -> None:
    # with 3 running, one more gives 25 tok/s each
    assert admission.choose([20.0], [10.0, 20.0, 25.0], speed) == 0
    assert admission.choose([20.0], [10.0, 26.0, 5.0], speed) is None  # 26 would be late; 26 <= 100/3 now


def test_a_running_request_already_beyond_the_current_batch_does_not_block() -> None:
    # 40 tok/s > speed(3) = 33: late whatever happens, so it holds nobody back
    assert admission.choose([20.0], [10.0, 40.0, 5.0], speed) == 0


def test_candidates_beyond_the_first_that_fit_go_first() -> None:
    assert admission.choose([60.0, 30.0, 10.0], [10.0], speed) == 1  # speed(2) = 50
    assert admission.choose([200.0] * admission.WINDOW + [1.0], [], speed) is None  # outside the window


def test_a_first_token_candidate_needs_only_its_own_need_met() -> None:
    # one more request (25 tok/s each) would make the 26 tok/s one late: an E2E candidate
    # waits, one whose SLA is its first token goes in (its SLA is decided at that token)
    running = [10.0, 26.0, 5.0]
    assert admission.choose([2.0], running, speed, [False]) is None
    assert admission.choose([2.0], running, speed, [True]) == 0
    assert admission.choose([2.0, 2.0], running, speed, [False, True]) == 1  # the first that may go
    assert admission.choose([30.0], running, speed, [True]) is None  # its own need still counts


def test_hopeless() -> None:
    assert admission.hopeless(10.0, 12.0, 2.5)
    assert not admission.hopeless(10.0, 12.0, 1.5)


def test_lost_means_decided_or_hopeless() -> None:
    assert admission.lost(10.0, 12.0, 0.0)  # nothing on the SLA path is left: decided
    assert admission.lost(10.0, 12.0, 2.5)
    assert not admission.lost(10.0, 12.0, 1.5)


def test_need_counts_only_the_first_token_under_ttft_and_nothing_once_late() -> None:
    assert admission.need(10.0, 12.0, 100, False, True) == 50.0
    assert admission.need(10.0, 12.0, 100, True, False) == 0.5
    assert admission.need(10.0, 12.0, 100, True, True) == 0.0
    assert admission.need(10.0, 9.0, 100, False, False) == 0.0


def test_a_prefill_that_fits_every_first_token_is_admitted() -> None:
    # the next prefill step ends at 10.2 without the candidate, 10.6 with it
    assert admission.prefill_fits(10.2, 10.6, 11.0, [10.8, 12.0])


def test_a_prefill_past_the_candidates_own_ttft_deadline_is_refused() -> None:
    assert not admission.prefill_fits(10.2, 10.6, 10.5, [])
    # an E2E node's first token is not its SLA: only the waiting requests count
    assert admission.prefill_fits(10.2, 10.6, None, [])


def test_a_prefill_that_would_make_a_waiting_first_token_late_is_refused() -> None:
    assert not admission.prefill_fits(10.2, 10.6, None, [12.0, 10.4])


def test_a_waiting_request_late_anyway_does_not_block_admission() -> None:
    # its first token misses 10.1 even without the candidate: protecting it gains nothing
    assert admission.prefill_fits(10.2, 10.6, None, [10.1])


def test_shed_only_a_ttft_request_whose_first_token_is_out_of_reach() -> None:
    assert admission.shed(now=10.0, due=10.5, rest_alone_s=1.0, ttft=True)  # 1 s of work, 0.5 s left
    assert not admission.shed(now=10.0, due=11.5, rest_alone_s=1.0, ttft=True)  # still makes it alone
    assert not admission.shed(now=10.0, due=10.5, rest_alone_s=1.0, ttft=False)  # E2E: served best effort
    assert not admission.shed(now=10.0, due=5.0, rest_alone_s=0.0, ttft=True)  # first token out: streams on
