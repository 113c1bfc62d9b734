"""One delivery of a node's message, as the node task sees it.

* **Attempt.** The transport counts every delivery of a message (``keys.attempt``) and
  stamps the count in the ``cato_attempt`` header: the fencing token of this delivery.
  The node's outcome, record or ``err``, is written only while no later delivery exists
  (``state.ledger``). A node that ran past half the visibility timeout asks before it
  hands its state on (``owns``), so a worker that was frozen while its node was
  redelivered publishes no second copy of the next node.
* **Failure.** Whatever a node raises, before its step, in it or after it (the next
  link's publish), ends in ``failed``: a message that is not a node's is buried in the
  dead letters (``state.dead``); a node that failed writes ``err`` with the node and the
  reason, through the outbox, which retries it if Redis is away.
* **Hand-on.** The next node gets the request state through the chain's next signature
  (field notes 1.6), and the task returns a short summary: Celery logs the return value
  at INFO and Flower shows it, and the state carries the prompt and the generated code.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from cato_mq.state import keys
from cato_mq.state.dead import Poison
from cato_mq.state.ledger import Failed
from cato_mq.state.transport import ATTEMPT_HEADER
from workers.replica import Replica

log = logging.getLogger("cato_mq.worker")
_current = threading.local()


@dataclass(frozen=True, slots=True)
class Delivery:
    request_id: str
    index: int
    pool: str
    task_id: str
    #: this delivery's number among the message's deliveries (0: not counted)
    attempt: int
    redelivered: bool
    began: float  #: monotonic time the node task began
    step: str = "?"
    kind: str = ""  #: the request's kind, once its state validated
    #: deliveries of this node that its workers handed back on purpose (Celery's retries:
    #: cato+'s gate), counted in ``attempt`` but no sign of a fault
    requeues: int = 0


def begin(request: Any, state: Any, pool: str, index: int) -> Delivery:
    """The delivery running in this thread; ``Poison`` if the state names no request."""
    clear()
    rid = state.get("rid") if isinstance(state, dict) else None
    if not isinstance(rid, str) or not rid:
        raise Poison("invalid_state", "the node's state names no request ('rid')")
    attempt = int(getattr(request, ATTEMPT_HEADER, 0) or 0)
    requeues = int(getattr(request, "retries", 0) or 0)
    redelivered = attempt > 1 + requeues or bool((request.delivery_info or {}).get("redelivered"))
    d = Delivery(rid, index, pool, str(request.id), attempt, redelivered, time.monotonic(), requeues=requeues)
    _current.value = d
    return d


def named(d: Delivery, step: str, kind: str = "") -> Delivery:
    """``d`` once its step and its request's kind are known (from the validated state)."""
    _current.value = d = dataclasses.replace(d, step=step, kind=kind)
    return d


def clear() -> None:
    _current.value = None


def owns(replica: Replica, d: Delivery) -> bool:
    """Is this delivery still the latest? Asked only of a node that ran long enough to
    have been redelivered (half the visibility timeout); a Redis error says yes, and
    the fenced write decides."""
    if not d.attempt or time.monotonic() - d.began < replica.settings.visibility_timeout_s / 2:
        return True
    try:
        latest = replica.redis.get(keys.attempt(d.task_id))
    except redis.RedisError:
        return True
    return latest is None or int(latest) == d.attempt


def hand_on(request: Any, state: dict[str, Any], d: Delivery) -> dict[str, Any]:
    """Give the next node the state; return what Celery may log and Flower may show."""
    chain = request.chain
    if chain:
        chain[-1]["args"] = [state]
        chain[-1]["immutable"] = True  # so Celery does not prepend our return value
    return {"request": d.request_id, "node": d.index, "step": d.step, "attempt": d.attempt}


def failed(replica: Replica, request: Any, exc: BaseException) -> None:
    """The node task raised ``exc``: bury a message that is no node's, or fail the request."""
    d: Delivery | None = getattr(_current, "value", None)
    clear()
    now = time.time()
    if d is None or isinstance(exc, Poison):
        kind, reason = ((exc.kind, exc.reason) if isinstance(exc, Poison)
                        else ("shape", f"the message does not fit the node task: {type(exc).__name__}: {exc}"))
        rid = d.request_id if d else keys.request_of_task(str(request.id)) or ""
        bury(replica, request, kind, reason, rid)
        if rid:
            attempt = d.attempt if d else int(getattr(request, ATTEMPT_HEADER, 0) or 0)
            replica.outbox.fail(Failed(rid, f"message refused ({kind}): {reason}", task_id=str(request.id),
                                       attempt=attempt), now)
        return
    reason = f"node {d.index} ({d.step}) failed: {exc or type(exc).__name__}"
    replica.outbox.fail(Failed(d.request_id, reason, pool=d.pool, task_id=d.task_id, attempt=d.attempt,
                               kind=d.kind), now)


def bury(replica: Replica, request: Any, kind: str, reason: str, rid: str) -> None:
    properties = request.properties or {}
    tag = str(properties.get("delivery_tag") or "")
    queue = str((request.delivery_info or {}).get("routing_key") or "")
    try:
        raw = replica.dead.delivered(tag) if tag else b""
        replica.dead.bury(kind, reason, queue, raw, list_key=keys.priority_list(queue, int(properties.get(
            "priority") or 0)), request=rid, tag=tag)
    except (redis.RedisError, ValueError, TypeError) as err:
        # the message stays unacked if Redis is away: it comes back and is buried then
        log.error("could not bury a message from %s: %s", queue, err)
