"""cato+ admission inside the worker: SABER's rule (``cato_mq.admission``) at one replica.

An LLM node about to put one more request on this replica's engine asks the gate first.
The gate admits it once the engine's predicted per-request speed with one more request
covers the node's own need and every admitted request's (tokens still owed over seconds
left to their node deadlines). It re-checks whenever an admitted request leaves, and every
``RECHECK_S`` because needs grow as deadlines near. While a node waits it holds one of the
worker's thread slots, so the worker takes no further message: the queue stays with the
other replicas. The gate gives a node up instead of admitting it:

* ``demote``: the node is lost (its request decided or out of reach even alone, or its own
  deadline out of reach even alone); the task republishes it to the best-effort tier.
  Nodes already in that tier are never demoted; they wait until one more request slows no
  admitted one below its need.
* ``requeue``: it waited ``max_wait_s``, a bound under the visibility timeout so the broker
  never hands a held message to a second worker; the task republishes it to its tier.

The simulator's ``sim_admission.pick`` weighs the first ``admission.WINDOW`` waiting nodes;
a replica weighs only the nodes its waiting threads hold (at most its concurrency).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from cato_mq import admission

#: Needs change with time alone (deadlines near), so a waiting node re-checks this often
#: even when no admitted request leaves: about one decode step of a 7B model.
RECHECK_S = 0.02


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

    def need(self, now: float) -> float:
        """Tokens/s it needs from now (``admission.need``); a best-effort node constrains nobody."""
        if self.best_effort:
            return 0.0
        done = self.progress()
        return admission.need(now, self.deadline, self.tokens - done, self.ttft, done > 0)


class Gate:
    def __init__(self, speed: Callable[[int], float], clock: Callable[[], float] = time.time) -> None:
        self._speed = speed  # tokens/s per request with n requests on the engine
        self._clock = clock
        self._admitted: set[Ticket] = set()
        self._cond = threading.Condition()
        self.waiting = 0  #: nodes held right now (the heartbeat's view of the gate)

    @property
    def admitted(self) -> int:
        return len(self._admitted)

    def enter(self, ticket: Ticket, lost: Callable[[float], bool], demotable: bool, max_wait_s: float) -> Verdict:
        give_up = time.monotonic() + max_wait_s
        ticket.best_effort = not demotable
        with self._cond:
            self.waiting += 1
            try:
                while True:
                    now = self._clock()
                    need = ticket.need(now)
                    if demotable and (need > self._speed(1) or lost(now)):
                        return Verdict.demote
                    running = [t.need(now) for t in self._admitted]
                    if admission.choose([need], running, self._speed) is not None:
                        self._admitted.add(ticket)
                        return Verdict.admitted
                    left = give_up - time.monotonic()
                    if left <= 0:
                        return Verdict.requeue
                    self._cond.wait(min(RECHECK_S, left))
            finally:
                self.waiting -= 1

    def leave(self, ticket: Ticket) -> None:
        with self._cond:
            self._admitted.discard(ticket)
            self._cond.notify_all()
