"""``submit`` a CodingTask; follow it with a ``Handle`` from any process."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from celery import chain

from cato_mq import keys
from cato_mq.app import get_app, redis_client
from cato_mq.estimates import alone, graph_costs
from cato_mq.graphs import Node, Step, graph_for
from cato_mq.models import CodingTask, Result
from cato_mq.routing import NODE_TASK, observer
from cato_mq.slack import budgets, remaining

#: A caller's clock may run this far ahead of ours before ``arrived_at`` is refused.
MAX_CLOCK_SKEW_S = 1.0
#: Longest single blocking read on the stream; keeps the socket timeout reasonable.
READ_BLOCK_MS = 1000


class RequestFailed(RuntimeError):
    """A node of the request failed; the message says which and why."""


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
    if start > now + MAX_CLOCK_SKEW_S:
        raise ValueError(f"arrived_at is {start - now:.3f} s in the future")
    sla = task.effective_sla
    max_tokens = task.effective_max_tokens
    snapshot = observer().pool(task.pool)
    plan = budgets(start, sla.seconds, graph_costs(snapshot.estimates, graph, max_tokens, sla.metric))
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
            "deadline": budget.deadline,
            "expect": budget.expect_s,
            "due": start + sla.seconds,
            "rest": rest[i],
        }
        sig = get_app().signature(NODE_TASK, args=(state,) if i == 0 else (), kwargs=kwargs)
        # a short argsrepr spares Celery a saferepr() of the whole state at every publish
        # (about 0.1 ms a hop); Flower shows it instead of the arguments
        links.append(sig.set(task_id=f"{rid}-{i}-{node.step}", argsrepr=f"({rid}, {node.step})",
                             kwargsrepr=repr(kwargs)))

    # no Redis write of our own: the stream is created (with its TTL) by the worker's
    # first write, so publishing is the only round trip a submit costs
    (chain(*links) if len(links) > 1 else links[0]).apply_async()
    return Handle(rid)


class Handle:
    """Reads one request's stream. Works from any process that knows ``request_id``."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
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
                raise RequestFailed(fields["d"])

    def result(self, timeout: float | None = 60.0) -> Result:
        for kind, fields in self.events(timeout):
            if kind == "end":
                return Result.model_validate_json(fields["d"])
            if kind == "err":
                raise RequestFailed(fields["d"])
        raise AssertionError("unreachable: events() ends with end or err")


def handle(request_id: str) -> Handle:
    return Handle(request_id)


def follow(
    handles: Sequence[Handle], timeout: float | None = 60.0
) -> Iterator[tuple[Handle, str, dict[str, str]]]:
    """Events of many requests, each stream in order, with one blocking read for all.

    For clients that keep many requests in flight: one thread follows them all instead of
    a thread per request. Ends when every request has ended (``end`` or ``err``).
    """
    client = redis_client()
    last = {keys.stream(h.request_id): "0" for h in handles}
    by_key = {keys.stream(h.request_id): h for h in handles}
    until = None if timeout is None else time.monotonic() + timeout
    while last:
        left_ms = READ_BLOCK_MS
        if until is not None:
            left_ms = min(left_ms, int((until - time.monotonic()) * 1000))
            if left_ms <= 0:
                waiting = ", ".join(by_key[k].request_id for k in last)
                raise TimeoutError(f"requests not finished after {timeout} s: {waiting}")
        for key, entries in client.xread(last, block=left_ms, count=256):
            for entry_id, fields in entries:
                last[key] = entry_id
                yield by_key[key], fields["t"], fields
                if fields["t"] in ("end", "err"):
                    del last[key]
                    break
