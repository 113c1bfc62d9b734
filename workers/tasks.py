"""The node task: runs one node of a request's graph on this worker's replica."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import redis
from celery import Task
from celery.exceptions import Ignore
from pydantic import ValidationError

from cato_mq.app import get_app
from cato_mq.graphs import Node, graph_for
from cato_mq.policy import admission
from cato_mq.policy.tiers import PRIORITY, Tier, engine_priority
from cato_mq.prompts import build_prompt
from cato_mq.router import NODE_TASK, destination
from cato_mq.schemas import CodingTask, NodeRecord, Result
from cato_mq.state import keys, outcomes
from cato_mq.state.dead import Poison
from cato_mq.state.hold import llm_hold
from cato_mq.state.ledger import Finished
from cato_mq.state.transport import CANCELLED_HEADER, HEAD_HEADER
from workers import delivery, steps
from workers.cancels import Cancelled, Token
from workers.engine import Outcome, SamplingParams
from workers.gate import Ticket, Verdict
from workers.outbox import TokenWriter
from workers.replica import Replica

app = get_app()
_replica: Replica | None = None
#: the node this thread just finished, for ``NodeTask.on_success`` to record
_finished = threading.local()
#: An LLM node re-profiles the engine only with this many streamed chunks: fewer give no
#: per-token time worth the name.
REPROFILE_MIN_TOKENS = 8


class Shed(Exception):
    """cato+ with ``CATO_ON_LOST=shed``: the request's first token cannot come in time."""


def _shed_now(replica: Replica, options: dict[str, Any]) -> bool:
    s, due, rest = replica.settings, options.get("due"), options.get("rest")
    return (s.routing == "cato+" and s.on_lost == "shed" and due is not None and rest is not None
            and admission.shed(time.time(), due, rest, bool(options.get("ttft"))))


def _shed(options: dict[str, Any], sla_s: float) -> Shed:
    late = time.time() - float(options["due"])
    why = (f"its {sla_s:g} s TTFT deadline passed {late:.1f} s ago" if late > 0
           else f"its first token cannot come within its {sla_s:g} s TTFT SLA even on an idle engine")
    return Shed(f"shed: {why} (CATO_ON_LOST=shed); submit it again")


def set_replica(replica: Replica | None) -> None:
    global _replica
    _replica = replica


def current_replica() -> Replica:
    if _replica is None:
        raise RuntimeError("no replica: node tasks run only inside `cato-mq worker`")
    return _replica


def _run_step(
    replica: Replica, state: dict[str, Any], spec: CodingTask, index: int, node: Node,
    writer: TokenWriter | None, timeout: float, token: Token | None = None, priority: int = 0,
) -> dict[str, Any]:
    task, outputs = state["task"], state["outputs"]
    if node.step == "retrieve":
        return steps.retrieve(task, outputs)
    if node.step == "validate":
        return steps.validate(task, outputs)
    if node.step == "noop" or writer is None:
        return {}
    rid = state["rid"]
    params = SamplingParams(
        max_tokens=spec.effective_max_tokens,
        temperature=spec.temperature,
        top_p=spec.top_p,
        seed=spec.seed if spec.seed is not None else int(rid[:8], 16) + index,  # same text on redelivery
        stop=spec.stop,
        priority=priority,
    )
    assert node.template is not None
    timing: dict[str, float] = {}
    outcome = Outcome()
    try:
        detail = steps.llm(
            task, outputs, node.template,
            lambda prompt: replica.generate(f"{rid}-{index}", prompt, params, timeout, timing, token, outcome),
            writer,
        )
    finally:
        writer.close()  # the node's last chunk precedes its record in the stream
    usage = {"prompt_tokens": outcome.prompt_tokens, "completion_tokens": outcome.completion_tokens,
             "finish_reason": outcome.finish_reason}
    return {**detail, **timing, **usage, "tokens": writer.deltas}


@contextlib.contextmanager
def _admission(
    task: Task, replica: Replica, state: dict[str, Any], spec: CodingTask, node: Node, writer: TokenWriter | None,
    options: dict[str, Any],
) -> Iterator[None]:
    """cato+: run the node only if the replica's gate admits it now (``workers.gate``).
    Otherwise republish it (Celery's retry keeps the rest of the chain): to the best-effort
    tier when it is lost, else to the head of its tier queue, where a sibling replica may
    take it at once, while this worker takes no LLM node until its engine has room."""
    gate, speed = replica.gate, replica.speed
    if gate is None or speed is None or writer is None:
        yield
        return
    due, rest = options.get("due"), options.get("rest")
    assert node.template is not None
    prompt = build_prompt(state["task"], state["outputs"], node.template)  # its prefill
    ticket = Ticket(options["deadline"], spec.effective_max_tokens,
                    node.first_token_decides(spec.effective_sla.metric), lambda: writer.deltas,
                    prompt_tokens=speed.prompt_tokens(prompt))
    demotable = _tier(task.request.delivery_info) != Tier.best_effort

    def lost(now: float) -> bool:
        return due is not None and rest is not None and admission.lost(now, due, rest)

    verdict = gate.enter(ticket, lost, demotable=demotable)
    with contextlib.suppress(redis.RedisError):  # a lost count must never fail the node
        outcomes.count_admission(replica.redis, options["pool"], verdict)
    if verdict is Verdict.demote and _shed_now(replica, options):
        raise _shed(options, spec.effective_sla.seconds)
    if verdict is Verdict.demote:
        raise task.retry(countdown=0, queue=keys.queue(options["pool"], Tier.best_effort),
                         priority=PRIORITY[Tier.best_effort], headers={HEAD_HEADER: 0})
    if verdict is Verdict.requeue:
        # held back before the copy is published, so that this worker's next pop passes
        # over it; this delivery writes nothing more (the copy is the next attempt)
        with contextlib.suppress(redis.RedisError):  # unheld, the worker only looks again sooner
            # a refused node tagged first-token (``keys.FIRST_TOKEN_TAG``) holds back every LLM
            # node, a refused E2E one only the E2E ones (``state.hold``). A tagged node in the
            # best-effort tier was judged by the full rule, yet it too holds back every one:
            # a hold that let it through would hand it straight back to this worker's pop
            llm_hold.close(replica.redis, every=ticket.ttft)
        raise task.retry(countdown=0, headers={HEAD_HEADER: 1},
                         **destination(options, "cato+", replica.settings.on_lost))
    try:
        yield
        if not ticket.shared and writer.first_at is not None and writer.deltas >= REPROFILE_MIN_TOKENS:
            # online re-profiling: this node had the engine to itself
            speed.observe(1, (time.time() - writer.first_at) / (writer.deltas - 1))
    finally:
        if gate.leave(ticket):
            with contextlib.suppress(redis.RedisError):  # the hold expires by itself
                llm_hold.open(replica.redis)


def _tier(delivery_info: dict[str, Any] | None) -> str:
    """The tier this message was queued in, from its routing key (its tier queue's name)."""
    return keys.tier_of(str((delivery_info or {}).get("routing_key", "")))


def _engine_priority(replica: Replica, delivery_info: dict[str, Any], deadline: float) -> int:
    """The node's priority on the engine: fifo (a baseline) keeps the engine's arrival order."""
    return 0 if replica.settings.routing == "fifo" else engine_priority(_tier(delivery_info), deadline)


def _observed(node: Node, started: float, ended: float, writer: TokenWriter | None) -> dict[str, float]:
    if writer is None or writer.first_at is None:
        return {f"{node.step}:fixed": ended - started, "node": ended - started}
    per_token = (ended - writer.first_at) / max(1, writer.deltas - 1)
    return {"llm:fixed": writer.first_at - started, "llm:per_token": per_token, "node": ended - started}


def _result(state: dict[str, Any], task: CodingTask) -> Result:
    sla = task.effective_sla
    submitted = state["submitted_at"]
    first = state.get("first_token_at")
    ttft = None if first is None else first - submitted
    e2e = state["nodes"][-1]["ended_at"] - submitted
    measured = ttft if sla.metric == "ttft" else e2e
    outputs = state["outputs"]
    return Result(
        request_id=state["rid"], kind=task.kind, text=outputs.get("text", ""), ttft_s=ttft, e2e_s=e2e,
        sla=sla, met_sla=measured is not None and measured <= sla.seconds,
        nodes=[NodeRecord.model_validate(n) for n in state["nodes"]],
        valid=outputs.get("valid"), validation=outputs.get("validation"),
        redeliveries=sum(max(0, int(n.get("attempt", 1)) - 1 - int(n.get("requeues", 0))) for n in state["nodes"]),
    )


def _read(d: delivery.Delivery, state: dict[str, Any]) -> tuple[CodingTask, tuple[Node, ...], delivery.Delivery]:
    """The request and graph the node's state describes, re-validated; ``Poison`` if not."""
    try:
        task = CodingTask.model_validate(state["task"])
        graph = _graph(state, task)
        if not 0 <= d.index < len(graph):
            raise IndexError(f"node {d.index} of a graph of {len(graph)}")
        step = graph[d.index].step
        if not isinstance(state["nodes"], list) or not isinstance(state["outputs"], dict):
            raise TypeError("'nodes' must be a list and 'outputs' an object")
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'task'}: {e['msg']}" for e in exc.errors())
        raise Poison("invalid_state", f"the request fails validation: {problems}") from None
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise Poison("invalid_state", f"the node's state is malformed: {type(exc).__name__}: {exc}") from None
    return task, graph, delivery.named(d, step, task.kind)


def _graph(state: dict[str, Any], task: CodingTask) -> tuple[Node, ...]:
    # "steps" overrides the kind's graph; only `cato-mq bench` uses it (no-op chains)
    if "steps" in state:
        return tuple(Node(step) for step in state["steps"])
    return graph_for(task.kind)


class NodeTask(Task):  # type: ignore[misc]
    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        _finished.value = None
        delivery.clear()

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        """Record the node once Celery has published the next link.

        After the publish, so a done marker never exists for a node whose next link was
        not sent (a crash in between redelivers the node: at least once; readers keep the
        first ``end`` and drop repeated stream chunks by offset). The last node is
        recorded here, before its ack, as its ``end`` is what the client waits for; the
        others go to the outbox, so the next node does not wait for their write. A write
        Redis refuses is retried by the outbox.
        """
        pending = getattr(_finished, "value", None)
        delivery.clear()
        if pending is None:
            return
        _finished.value = None
        replica = current_replica()
        if pending[0].result_json is None:
            replica.outbox.defer(*pending)
        else:
            replica.outbox.record(*pending)

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """Any exception of the node, before its step, in it or after it: the client hears."""
        _finished.value = None
        delivery.failed(current_replica(), self.request, exc)


# max_retries=None: a node cato+'s gate hands back may come back any number of times (a
# retry(max_retries=None) call alone falls back to Celery's default of 3, and the fourth
# hand-back failed the request with MaxRetriesExceededError)
@app.task(name=NODE_TASK, bind=True, base=NodeTask, max_retries=None)
def node(
    self: Task, state: dict[str, Any], *, pool: str, index: int, deadline: float, expect: float,
    due: float | None = None, rest: float | None = None, ttft: bool = False,
) -> dict[str, Any]:
    replica = current_replica()
    cutoff = time.monotonic() + replica.settings.node_timeout_s  # time held at the gate included
    d = delivery.begin(self.request, state, pool, index)
    rid = d.request_id
    info = self.request.delivery_info or {}
    if d.redelivered and replica.redis.exists(keys.node_done(rid, index)):
        raise Ignore()  # finished before its worker died un-acked; the next link is out already
    task, graph, d = _read(d, state)
    spec = graph[index]
    queued_at = state["nodes"][-1]["ended_at"] if state["nodes"] else state["published_at"]
    writer = TokenWriter(replica.outbox, rid, index, replica.name) if spec.step == "llm" else None
    options = {"pool": pool, "index": index, "deadline": deadline, "expect": expect, "due": due, "rest": rest,
               "ttft": ttft}
    try:
        with replica.cancels.watch(rid) as token:
            if getattr(self.request, CANCELLED_HEADER, None):
                token.set()  # cancelled while it was queued: it never reaches the engine
            token.check()
            if _shed_now(replica, options):
                raise _shed(options, task.effective_sla.seconds)
            with replica.busy(), _admission(self, replica, state, task, spec, writer, options):
                token.check()
                started = time.time()
                detail = _run_step(replica, state, task, index, spec, writer, cutoff - time.monotonic(), token,
                                   _engine_priority(replica, info, deadline))
            token.check()  # the next node is not published (nothing later in the chain runs)
    except Cancelled:
        replica.cancelled(rid, task.kind)
        raise Ignore() from None
    ended = time.time()
    first_at = writer.first_at if writer else None
    if spec.streams and first_at is not None and state.get("first_token_at") is None:
        state["first_token_at"] = first_at
    sla = task.effective_sla
    done_at = first_at if spec.first_token_decides(sla.metric) and first_at is not None else ended
    record = NodeRecord(
        index=index, step=spec.step, tier=_tier(info), worker=replica.name, redelivered=d.redelivered,
        attempt=max(1, d.attempt), requeues=d.requeues, deadline=deadline, queued_at=queued_at,
        started_at=started, ended_at=ended, met_deadline=done_at <= deadline, detail=detail,
    )
    state["nodes"].append(record.model_dump(mode="json"))
    if not delivery.owns(replica, d):
        raise Ignore()  # redelivered while we ran: the later delivery owns the node

    last = index == len(graph) - 1
    result = _result(state, task) if last else None
    _finished.value = (
        Finished(
            request_id=rid, pool=pool, index=index, record_json=record.model_dump_json(),
            result_json=result.model_dump_json() if result else None,
            node_missed=not record.met_deadline, request_missed=bool(result and not result.met_sla),
            observed=_observed(spec, started, ended, writer), task_id=d.task_id, attempt=d.attempt,
            step=spec.step, tier=record.tier, kind=task.kind,
            ttft_s=result.ttft_s if result else None, e2e_s=result.e2e_s if result else None,
        ),
        ended,
    )
    return delivery.hand_on(self.request, state, d)
