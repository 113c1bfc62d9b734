"""cato+'s gate in front of a replica's engine: SABER's rule with real threads."""

from __future__ import annotations

from workers.gate import Gate, Ticket, Verdict

NOW = 1000.0


def speed(n: int) -> float:
    return {1: 100.0, 2: 60.0}.get(n, 30.0)  # tokens/s per request with n on the engine


def ticket(tokens: int, seconds_left: float, ttft: bool = False, done: int = 0) -> Ticket:
    return Ticket(NOW + seconds_left, tokens, ttft, lambda: done)


def never_lost(now: float) -> bool:
    return False


def gate() -> Gate:
    return Gate(speed, clock=lambda: NOW)


def test_an_idle_engine_admits_a_feasible_node() -> None:
    g = gate()
    assert g.enter(ticket(50, 1.0), never_lost, True) is Verdict.admitted
    assert g.admitted == 1


def test_a_node_that_would_slow_an_admitted_one_below_its_need_is_refused_at_once() -> None:
    g = gate()
    first = ticket(80, 1.0)  # needs 80 tokens/s: fine alone (100), not beside another (60)
    assert g.enter(first, never_lost, True) is Verdict.admitted
    assert g.enter(ticket(5, 60.0), never_lost, True) is Verdict.requeue
    assert g.admitted == 1


def test_a_first_token_node_goes_in_where_an_e2e_node_would_slow_an_admitted_one() -> None:
    g = gate()
    assert g.enter(ticket(80, 1.0), never_lost, True) is Verdict.admitted  # needs 80: alone only
    completion = ticket(64, 0.2, ttft=True)  # needs 5 tokens/s, for its first token
    assert g.enter(completion, never_lost, True) is Verdict.admitted
    assert g.admitted == 2 and not g.closed


def test_a_refusal_closes_the_gate_until_an_admitted_node_leaves() -> None:
    g = gate()
    first, second = ticket(80, 1.0), ticket(5, 60.0)
    g.enter(first, never_lost, True)
    assert not g.closed
    assert g.enter(second, never_lost, True) is Verdict.requeue
    assert g.closed  # the worker now passes over LLM nodes
    assert g.leave(first) is True and not g.closed  # room came: it takes them again
    assert g.enter(second, never_lost, True) is Verdict.admitted
    assert g.leave(second) is False  # nothing was held back: no wake-up to send


def test_no_more_requests_are_admitted_than_the_engine_batches() -> None:
    g = Gate(lambda n: 1000.0, clock=lambda: NOW, batch=2)  # fast enough for any number
    running = [ticket(5, 60.0), ticket(5, 60.0)]
    for t in running:
        assert g.enter(t, never_lost, True) is Verdict.admitted
    third = ticket(5, 60.0)
    assert g.enter(third, never_lost, True) is Verdict.requeue  # it would wait inside the engine
    g.leave(running[0])
    assert g.enter(third, never_lost, True) is Verdict.admitted


def test_an_admission_opens_a_closed_gate_and_a_demotion_leaves_it_as_it_was() -> None:
    g = gate()
    first = ticket(80, 1.0)
    g.enter(first, never_lost, True)
    g.enter(ticket(5, 60.0), never_lost, True)
    assert g.enter(ticket(5, 60.0), lambda now: True, True) is Verdict.demote
    assert g.closed
    g.leave(first)
    g.enter(ticket(80, 1.0), never_lost, True)
    g.enter(ticket(5, 60.0), never_lost, True)
    assert g.closed
    roomy = Gate(lambda n: 1000.0, clock=lambda: NOW)  # a faster engine beside: admits anything
    roomy.closed = True
    assert roomy.enter(ticket(5, 60.0), never_lost, True) is Verdict.admitted and not roomy.closed


def test_lost_nodes_are_demoted_and_best_effort_ones_are_not() -> None:
    g = gate()
    assert g.enter(ticket(5, 60.0), lambda now: True, True) is Verdict.demote
    # its own deadline is out of reach even alone: 500 tokens in 1 s against 100 tokens/s
    assert g.enter(ticket(500, 1.0), never_lost, True) is Verdict.demote
    assert g.admitted == 0
    assert g.enter(ticket(500, 1.0), lambda now: True, False) is Verdict.admitted


def test_a_ttft_node_past_its_first_token_constrains_nobody() -> None:
    g = gate()
    g.enter(ticket(80, 1.0, ttft=True, done=3), never_lost, True)
    assert g.enter(ticket(50, 1.0), never_lost, True) is Verdict.admitted


def test_a_ttft_node_needs_only_its_first_token() -> None:
    assert ticket(500, 0.5, ttft=True).need(NOW) == 2.0
    assert ticket(500, 0.5).need(NOW) == 1000.0
    assert ticket(500, -0.1).need(NOW) == 0.0  # already late: it can gain nothing


def first_token(running: int, prefill_tokens: int) -> float:
    return 0.01 + 0.001 * prefill_tokens  # 1 ms per prompt token


def test_a_long_prefill_waits_while_it_would_make_a_waiting_first_token_late() -> None:
    g = Gate(speed, clock=lambda: NOW, first_token=first_token)
    out = [0]
    first = Ticket(NOW + 0.3, 10, True, lambda: out[0], prompt_tokens=100)  # first token at +0.11
    assert g.enter(first, never_lost, True) is Verdict.admitted
    # 400 more prompt tokens in the same prefill step: the first token comes at +0.51
    long = Ticket(NOW + 5.0, 10, True, lambda: 0, prompt_tokens=400)
    assert g.enter(long, never_lost, True) is Verdict.requeue
    short = Ticket(NOW + 5.0, 10, True, lambda: 0, prompt_tokens=50)  # +0.16: both in time
    assert g.enter(short, never_lost, True) is Verdict.admitted
    g.leave(short)
    out[0] = 1  # the waiting request's first token streamed: nothing left to protect
    assert g.enter(long, never_lost, True) is Verdict.admitted


def test_a_prefill_past_its_own_ttft_deadline_even_alone_is_demoted_but_an_e2e_node_goes() -> None:
    g = Gate(speed, clock=lambda: NOW, first_token=first_token)
    assert g.enter(Ticket(NOW + 0.2, 10, True, lambda: 0, prompt_tokens=500), never_lost, True) \
        is Verdict.demote
    assert g.enter(Ticket(NOW + 5.0, 10, False, lambda: 0, prompt_tokens=500), never_lost, True) \
        is Verdict.admitted


def test_a_node_that_ever_shared_the_engine_is_marked_shared() -> None:
    g = gate()
    alone = ticket(5, 60.0)
    assert g.enter(alone, never_lost, True) is Verdict.admitted and not alone.shared
    g.leave(alone)
    first, second = ticket(5, 60.0), ticket(5, 60.0)
    g.enter(first, never_lost, True)
    assert not first.shared
    g.enter(second, never_lost, True)
    assert first.shared and second.shared  # each ran beside the other for a while
