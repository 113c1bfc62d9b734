"""cato+ admission inside the worker: SABER's rule (``cato_mq.policy.admission``) at one replica.

An LLM node about to put one more request on this replica's engine asks the gate first.
The gate admits it once the engine's predicted per-request speed with one more request
covers the node's own need and every admitted request's (tokens still owed over seconds
left to their node deadlines; a node whose first token decides its SLA needs only its own
covered, ``admission.choose``), and once the step that would prefill it ends before its own
TTFT deadline and every admitted request's still waiting for its first token
(``admission.prefill_fits``). The gate decides at once (``enter``), and gives a node up
instead of admitting it:

* ``demote``: the node is lost (its request decided or out of reach even alone, or its own
  deadline out of reach even alone, or its first token's); the task republishes it to the
  best-effort tier.
  Nodes already in that tier are never demoted; they wait until one more request slows no
  admitted one below its need.
* ``requeue``: this engine cannot take it now. The task republishes it at the head of its
  tier queue, where any sibling replica may take it at once, and the gate stays
  ``closed``: the worker then takes no LLM node of the kind refused (its pops pass over
  them, ``state.hold``: after an E2E node's refusal, first-token nodes still come) and goes
  on running nodes of other steps, until an admitted
  request leaves (``leave`` says so) or the hold expires (``state.hold.HOLD_S``), when it
  looks at the head LLM node again.

So the node is never pinned to a replica that cannot run it, and no thread waits for room.
The simulator's ``cato_mq.sim.admission.pick`` leaves a refused node in the shared queue the
same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from cato_mq.policy import admission


class Verdict(StrEnum):
    admitted = "admitted"
    demote = "demote"
    requeue = "requeue"


@dataclass(eq=False)
class Ticket:
    """One LLM node's claim on the engine."""

    deadline: float  #: wall time the node's SLA-relevant part is due
    tokens: int  #: output tokens it may produce
    ttft: bool  #: only its first token counts (the streamed call of a TTFT request)
    progress: Callable[[], int]  #: tokens produced so far
    best_effort: bool = False  #: its request is lost: protecting it gains nothing
    prompt_tokens: int = 0  #: its prefill
    #: another request was on the engine at some time while it was: its timing is not the
    #: engine's alone (online re-profiling reads only unshared nodes)
    shared: bool = False

    def first_due(self) -> float | None:
        """Its TTFT deadline while its first token is still to come and protecting it counts."""
        return self.deadline if self.ttft and not self.best_effort and self.progress() == 0 else None

    def need(self, now: float) -> float:
        """Tokens/s it needs from now (``admission.need``); a best-effort node constrains nobody."""
        if self.best_effort:
            return 0.0
        done = self.progress()
        return admission.need(now, self.deadline, self.tokens - done, self.ttft, done > 0)


class Gate:
    def __init__(
        self, speed: Callable[[int], float], clock: Callable[[], float] = time.time,
        first_token: Callable[[int, int], float] | None = None, batch: int | None = None,
    ) -> None:
        self._speed = speed  # tokens/s per request with n requests on the engine
        #: the engine's batch (max_num_seqs): a request admitted past it would wait inside the
        #: engine, where no sibling can take it, while the model counts it as decoding
        self._batch = batch
        #: seconds until a prefill step of t tokens ends with n on the engine (None: no check)
        self._first_token = first_token
        self._clock = clock
        self._admitted: set[Ticket] = set()
        self._lock = threading.Lock()
        #: a node was refused for want of room, and none admitted or left since
        self.closed = False

    @property
    def admitted(self) -> int:
        return len(self._admitted)

    def enter(self, ticket: Ticket, lost: Callable[[float], bool], demotable: bool) -> Verdict:
        """Admit the node now, or say why not; never waits. A refusal for want of room
        closes the gate; an admission opens it."""
        ticket.best_effort = not demotable
        with self._lock:
            verdict = self._decide(ticket, lost, demotable)
            if verdict is Verdict.admitted:
                for t in self._admitted:
                    t.shared = True
                ticket.shared = bool(self._admitted)
                self._admitted.add(ticket)
            if verdict is not Verdict.demote:
                self.closed = verdict is Verdict.requeue
            return verdict

    def _decide(self, ticket: Ticket, lost: Callable[[float], bool], demotable: bool) -> Verdict:
        now = self._clock()
        need = ticket.need(now)
        if demotable and (need > self._speed(1) or self._prefill_hopeless(ticket, now) or lost(now)):
            return Verdict.demote
        if self._batch is not None and len(self._admitted) >= self._batch:
            return Verdict.requeue
        running = [t.need(now) for t in self._admitted]
        first = [ticket.first_due() is not None]
        if self._prefill_fits(ticket, now) and admission.choose([need], running, self._speed, first) is not None:
            return Verdict.admitted
        return Verdict.requeue

    def _prefill_hopeless(self, ticket: Ticket, now: float) -> bool:
        """Its first token misses its TTFT deadline even with the engine to itself."""
        due, first_token = ticket.first_due(), self._first_token
        return first_token is not None and due is not None and now + first_token(0, ticket.prompt_tokens) > due

    def _prefill_fits(self, ticket: Ticket, now: float) -> bool:
        """Every admitted request that has no token yet counts as waiting for its prefill
        (some may be in the step under way: a cautious reading)."""
        if self._first_token is None:
            return True
        waiting = [t for t in self._admitted if t.progress() == 0]
        n, queued = len(self._admitted), sum(t.prompt_tokens for t in waiting)
        firsts = [d for t in waiting if (d := t.first_due()) is not None]
        return admission.prefill_fits(
            now + self._first_token(n, queued), now + self._first_token(n, queued + ticket.prompt_tokens),
            ticket.first_due(), firsts,
        )

    def leave(self, ticket: Ticket) -> bool:
        """The node is off the engine. True if that opened the gate: the worker takes LLM
        nodes again (``state.hold.LlmHold.open``)."""
        with self._lock:
            self._admitted.discard(ticket)
            opened, self.closed = self.closed, False
            return opened
