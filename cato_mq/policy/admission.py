"""SLA-feasibility admission in the style of SABER (arXiv 2506.19677), as a pure policy.

A replica about to take one more LLM node predicts the per-request decode speed it would
then give every request, ``speed(L + 1)`` tokens/s with ``L`` requests already on its
engine (the engine profile's step time, a USL fit where the profile has one). Each request
needs ``tokens it still owes against its deadline / seconds left``: all its remaining
tokens under an E2E deadline, one token (the first) under a TTFT deadline, nothing once
its deadline is decided. The node is admitted only if ``speed(L + 1)`` covers its own need
and every admitted request's; otherwise it waits, and a later node of the first
``WINDOW`` waiting may go first (against head-of-line blocking).

**Prefill.** SABER's rule is about decode speed. Under a TTFT SLA with long contexts (the
Azure code trace: 2,048 tokens on average) the first token waits for prefill instead, and
the engine prefills every request waiting for it in one step: one more long prompt delays
every first token in that step. So a node is also admitted only if the step that would
prefill it ends before its own TTFT deadline and before the deadline of every request on
the engine still waiting for its first token (``prefill_fits``); the caller predicts that
step from the engine profile.

**Hopeless** nodes, whose request cannot meet its SLA even if served alone right now, and
nodes whose request's SLA is already decided (a TTFT request after its first token), go to
a best-effort queue served only while nothing feasible waits: under overload, serving a
lost cause first (violated-first) makes a request that could still make it late as well.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

#: SABER draws candidates from the first 20 waiting requests.
WINDOW = 20


def required_speed(tokens_owed: int, time_left_s: float) -> float:
    """Tokens/s a request needs from now on; 0 when it owes nothing, inf when out of time."""
    if tokens_owed <= 0:
        return 0.0
    if time_left_s <= 0:
        return math.inf
    return tokens_owed / time_left_s


def need(now: float, deadline: float, owed: int, ttft: bool, first_out: bool) -> float:
    """Tokens/s a node needs against its deadline: under a TTFT SLA only its first token
    counts. A node already late needs nothing it can still get, so it constrains nobody."""
    if ttft:
        owed = 0 if first_out else 1
    left = deadline - now
    return required_speed(owed, left) if left > 0 else 0.0


def admits(speed_next: float, candidate: float, running: Sequence[float]) -> bool:
    """SABER's rule: the speed with one more request covers the candidate and every
    running request's need. Hopeless requests (need = inf) are never on this path."""
    return speed_next >= max(candidate, max(running, default=0.0))


def prefill_fits(
    without_at: float, with_at: float, own_deadline: float | None, waiting: Iterable[float]
) -> bool:
    """Whether the candidate's prefill fits: the next prefill step would end at
    ``without_at`` without it and ``with_at`` with it. Its first token must come by
    ``own_deadline`` (None: its first token is not what its SLA counts), and so must every
    waiting request's (``waiting``: their TTFT deadlines) that would make it without the
    candidate; one late already does not stop the engine from taking more."""
    if own_deadline is not None and with_at > own_deadline:
        return False
    return all(with_at <= d for d in waiting if without_at <= d)


def hopeless(now: float, deadline: float, service_alone_s: float) -> bool:
    """The SLA cannot be met even if the rest of the request ran alone from now."""
    return now + service_alone_s > deadline


def shed(now: float, due: float, rest_alone_s: float, ttft: bool) -> bool:
    """A node whose request ``CATO_ON_LOST=shed`` ends instead of serving it late: under a
    TTFT SLA, its first token cannot come by ``due`` even with the engine to itself. A TTFT
    request past its first token (nothing left on its SLA path) streams on, and an E2E
    request still gets its answer, best effort."""
    return ttft and rest_alone_s > 0 and hopeless(now, due, rest_alone_s)


def lost(now: float, due: float, rest_alone_s: float) -> bool:
    """A node for the best-effort tier: its request's SLA is decided (no SLA-path work is
    left: a TTFT request past its first token) or out of reach even alone."""
    return rest_alone_s <= 0 or hopeless(now, due, rest_alone_s)


def choose(
    candidates: Sequence[float], running: Sequence[float], speed: Callable[[int], float],
    first_token: Sequence[bool] = (),
) -> int | None:
    """Index of the first of the first ``WINDOW`` candidates (needs in queue order) that
    the replica can admit next to ``running``; None if none can.

    A candidate whose SLA is its first token (``first_token[i]``: a completion's or a
    generation's streamed call) needs only its own need met, not every running request's:
    it is decided within its prefill step, so a refusal makes it late for sure, while
    admitting it costs each running request one more batch share of a decode step (vLLM's
    own priority policy, completion first, goes further and takes it whatever it costs)."""
    speed_now, speed_next = speed(max(1, len(running))), speed(len(running) + 1)
    # a running request that needs more than the batch gives it even now is late whatever
    # this replica admits: protecting it would only make the candidate late as well
    need = max((r for r in running if r <= speed_now), default=0.0)
    protected = speed_next >= need  # one more request makes no running one late
    for i, c in enumerate(candidates[:WINDOW]):
        if (protected or (i < len(first_token) and first_token[i])) and speed_next >= c:
            return i
    return None
