"""``submit`` a CodingTask; follow it with a ``Handle`` from any process."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import redis

from cato_mq.app import get_app, redis_client
from cato_mq.graphs import Node, Step, graph_for
from cato_mq.policy.estimates import alone, graph_costs
from cato_mq.policy.overload import retry_after_s
from cato_mq.policy.slack import budgets, remaining
from cato_mq.router import NODE_TASK, observer
from cato_mq.schemas import CodingTask, Result
from cato_mq.settings import get_settings
from cato_mq.state import keys
from cato_mq.state.publish import BacklogFull, bounded, published_epoch

#: A caller's clock may run this far ahead of ours before ``arrived_at`` is refused.
MAX_CLOCK_SKEW_S = 1.0
#: Longest single blocking read on the stream; keeps the socket timeout reasonable.
READ_BLOCK_MS = 1000
#: Backoff between reads while Redis is away: first wait, and the longest.
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 1.0


class RequestFailed(RuntimeError):
    """A node of the request failed; the message says which and why."""


class RequestLost(RequestFailed):
    """Redis restarted without its data while the request was in it (no persistence)."""


class RequestCancelled(RequestFailed):
    """The request was cancelled (``Handle.cancel()``, or the gateway's client hung up)."""


class Overloaded(RuntimeError):
    """``submit`` refused the request: its pool's backlog is at ``CATO_MAX_BACKLOG``.
    Nothing was queued; ``retry_after_s`` says when a place is likely (HTTP's Retry-After)."""

    def __init__(self, pool: str, queued: int, limit: int, retry_after_s: float) -> None:
        super().__init__(f"pool {pool} is overloaded: {queued} nodes queued, the bound is {limit} "
                         f"(CATO_MAX_BACKLOG); nothing was queued, retry in {retry_after_s:g} s")
        self.pool = pool
        self.queued = queued
        self.limit = limit
        self.retry_after_s = retry_after_s


def submit(task: CodingTask, *, arrived_at: float | None = None) -> Handle:
    """Plan the request's node deadlines and publish its chain. Returns at once.

    ``arrived_at`` (wall-clock seconds) lets a gateway count the SLA from when the user
    asked rather than from this call.
    """
    if not isinstance(task, CodingTask):
        raise TypeError(f"submit() takes a CodingTask, not {type(task).__name__}")
    return _publish(task, graph_for(task.kind), arrived_at)


def submit_steps(steps: list[Step], pool: str = "default") -> Handle:
    """A chain of bare steps (``noop`` for ``cato-mq bench``), through the real path."""
    task = CodingTask(kind="summarization", prompt="-", pool=pool, sla={"metric": "e2e", "seconds": 60})
    return _publish(task, tuple(Node(s) for s in steps), None, {"steps": steps})


def _publish(
    task: CodingTask, graph: tuple[Node, ...], arrived_at: float | None, extra: dict[str, Any] | None = None
) -> Handle:
    now = time.time()
    start = now if arrived_at is None else arrived_at
    if not isinstance(start, int | float) or not math.isfinite(start):
        raise ValueError(f"arrived_at must be a finite time in seconds, not {start!r}")
    if start > now + MAX_CLOCK_SKEW_S:
        raise ValueError(f"arrived_at is {start - now:.3f} s in the future")
    sla = task.effective_sla
    max_tokens = task.effective_max_tokens
    snapshot = observer().pool(task.pool)
    costs = graph_costs(snapshot.estimates, graph, max_tokens, sla.metric)
    plan = budgets(start, sla.seconds, costs)
    # what is left of the request at each node with the engine to itself: cato+'s router
    # and workers demote a node to best effort once even that would miss ``due``
    rest = remaining(graph_costs(alone(snapshot.estimates), graph, max_tokens, sla.metric))

    rid = uuid.uuid4().hex
    state: dict[str, Any] = {
        "rid": rid,
        "task": task.model_dump(mode="json"),
        "submitted_at": start,
        "published_at": now,
        "outputs": {},
        "nodes": [],
        **(extra or {}),
    }
    links = []
    for i, (node, budget) in enumerate(zip(graph, plan, strict=True)):
        kwargs = {
            "pool": task.pool,
            "index": i,
            # to the microsecond: every later link carries these, and a computed float's
            # repr runs to 17 digits (0.054999999999999986 for 0.055)
            "deadline": round(budget.deadline, 6),
            "expect": round(budget.expect_s, 6),
            "due": round(start + sla.seconds, 6),
            "rest": round(rest[i], 6),
            # cato+ sheds a TTFT request that can no longer make its first token in time
            "ttft": sla.metric == "ttft",
        }
        sig = get_app().signature(NODE_TASK, args=(state,) if i == 0 else (), kwargs=kwargs)
        # a short argsrepr spares Celery a saferepr() of the whole state at every publish
        # (about 0.1 ms a hop); Flower shows it instead of the arguments. The kwargsrepr,
        # too, rides in every earlier link's message: the node and its deadline only
        task_id = keys.node_task_id(rid, i, node.step, node.first_token_decides(sla.metric))
        links.append(sig.set(task_id=task_id, argsrepr=f"({rid}, {node.step})",
                             kwargsrepr=f"{{'index': {i}, 'deadline': {kwargs['deadline']}}}"))

    # no Redis write of our own: the stream is created (with its TTL) by the worker's
    # first write, so publishing is the only round trip a submit costs. The publish script
    # counts the pool's backlog and refuses it whole over the bound (state.publish).
    try:
        with bounded(keys.backlog_lists(task.pool), get_settings().max_backlog):
            # the message Celery's chain(...).apply_async() sends: the first link, with the
            # others (last first) in its ``chain`` option. Sent directly, as chain() clones
            # and deep-copies every link first (about a fifth of a submit's time)
            links[0].apply_async(**({"chain": links[:0:-1]} if len(links) > 1 else {}))
    except BacklogFull as full:
        node_s = sum(c.full_s for c in costs) / len(costs)
        wait = retry_after_s(full.queued, full.limit, snapshot.slots, node_s)
        raise Overloaded(task.pool, full.queued, full.limit, wait) from None
    return Handle(rid, epoch=published_epoch())


class Handle:
    """Reads one request's stream. Works from any process that knows ``request_id``.

    ``epoch`` is the broker incarnation the request was published into (``keys.epoch``);
    a handle that knows it tells a request Redis forgot from one still running."""

    def __init__(self, request_id: str, epoch: str | None = None) -> None:
        self.request_id = request_id
        self.epoch = epoch
        #: seconds from the first ``stream()`` call to the first token it yielded
        self.client_ttft_s: float | None = None

    def __repr__(self) -> str:
        return f"Handle({self.request_id!r})"

    def events(self, timeout: float | None = 60.0) -> Iterator[tuple[str, dict[str, str]]]:
        """Every event in order, ending with ``end`` or ``err``."""
        for _, kind, fields in follow([self], timeout):
            yield kind, fields

    def stream(self, timeout: float | None = 60.0) -> Iterator[str]:
        """Yield the answer's text as it is produced.

        Chunks carry their offset in the node's output, so when a crashed worker's node is
        regenerated (same seed, same text) nothing already shown is shown twice.
        """
        began = time.monotonic()
        shown: dict[str, int] = {}
        for kind, fields in self.events(timeout):
            if kind == "tok":
                node, offset, data = fields["n"], int(fields["o"]), fields["d"]
                have = shown.get(node, 0)
                if offset + len(data) <= have:
                    continue
                piece = data[max(0, have - offset) :]
                shown[node] = offset + len(data)
                if self.client_ttft_s is None:
                    self.client_ttft_s = time.monotonic() - began
                yield piece
            elif kind == "err":
                raise failure(fields)

    def cancel(self) -> bool:
        """Cancel the request end to end: a queued node never reaches an engine, a running one
        is aborted on its engine, nothing later in the chain runs, and the request is counted
        cancelled, apart from met and missed (``cato_mq.state.cancel``). Readers of its
        stream, this handle's included, end with ``RequestCancelled``. Returns False if it was
        cancelled before. A request that already ended stays as it ended."""
        from cato_mq.state import cancel

        return cancel.cancel(redis_client(), self.request_id, get_settings().result_ttl_s)

    def result(self, timeout: float | None = 60.0) -> Result:
        for kind, fields in self.events(timeout):
            if kind == "end":
                return Result.model_validate_json(fields["d"])
            if kind == "err":
                raise failure(fields)
        raise AssertionError("unreachable: events() ends with end or err")


def failure(fields: dict[str, str]) -> RequestFailed:
    """The exception an ``err`` event stands for."""
    if fields.get("cancelled"):
        return RequestCancelled(fields["d"])
    return (RequestLost if fields.get("lost") else RequestFailed)(fields["d"])


def handle(request_id: str) -> Handle:
    return Handle(request_id)


def known(request_id: str) -> bool:
    """Whether ``request_id`` was submitted to this Redis and has not expired yet: its first
    node's publish marks it (``keys.request``), its first output starts its stream."""
    if keys.request_of_task(f"{request_id}-0-x") is None:
        return False
    pipe = redis_client().pipeline(transaction=False)
    pipe.exists(keys.request(request_id))
    pipe.exists(keys.stream(request_id))
    return any(pipe.execute())


def follow(
    handles: Sequence[Handle], timeout: float | None = 60.0
) -> Iterator[tuple[Handle, str, dict[str, str]]]:
    """Events of many requests, each stream in order, with one blocking read for all.

    For clients that keep many requests in flight: one thread follows them all instead of
    a thread per request. Ends when every request has ended (``end`` or ``err``).

    Rides out a Redis restart: a failed read is retried with backoff until ``timeout``.
    Each read also fetches the broker's epoch; when Redis restarted without its data, a
    request whose handle knows its epoch ends with an ``err`` event marked ``lost``
    (``RequestLost``) once its stream has been silent for the visibility timeout: long
    enough for a node that was running to finish it into the new Redis.
    """
    client = redis_client()
    last = {keys.stream(h.request_id): "0" for h in handles}
    by_key = {keys.stream(h.request_id): h for h in handles}
    until = None if timeout is None else time.monotonic() + timeout
    grace = get_settings().visibility_timeout_s
    forgotten: dict[str, float] = {}  # stream -> when its epoch was first seen gone
    backoff = RETRY_FIRST_S
    while last:
        left_ms = READ_BLOCK_MS
        if until is not None:
            left_ms = min(left_ms, int((until - time.monotonic()) * 1000))
            if left_ms <= 0:
                waiting = ", ".join(by_key[k].request_id for k in last)
                raise TimeoutError(f"requests not finished after {timeout} s: {waiting}")
        try:
            pipe = client.pipeline(transaction=False)
            pipe.get(keys.epoch())
            pipe.xread(last, block=left_ms, count=256)
            epoch, replies = pipe.execute()
            backoff = RETRY_FIRST_S
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            time.sleep(min(backoff, left_ms / 1000))  # Redis restarting: try again
            backoff = min(2 * backoff, RETRY_MAX_S)
            continue
        for key, entries in replies:
            forgotten.pop(key, None)
            for entry_id, fields in entries:
                last[key] = entry_id
                yield by_key[key], fields["t"], fields
                if fields["t"] in ("end", "err"):
                    del last[key]
                    break
        now = time.monotonic()
        for key in [k for k in last if by_key[k].epoch not in (None, epoch)]:
            if now - forgotten.setdefault(key, now) >= grace:
                del last[key]
                reason = (f"request {by_key[key].request_id} lost: Redis restarted without its data "
                          "(no persistence); submit it again")
                yield by_key[key], "err", {"t": "err", "d": reason, "lost": "1"}
