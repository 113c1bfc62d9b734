"""The node task: runs one node of a request's graph on this worker's replica."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from celery import Task
from celery.exceptions import Ignore

from cato_mq import admission, keys
from cato_mq.app import get_app
from cato_mq.graphs import Node, graph_for
from cato_mq.ledger import Finished
from cato_mq.models import CodingTask, NodeRecord, Result
from cato_mq.routing import NODE_TASK, destination
from cato_mq.tiers import PRIORITY, Tier
from workers import steps
from workers.engine import SamplingParams
from workers.gate import Ticket, Verdict
from workers.outbox import TokenWriter
from workers.replica import Replica

app = get_app()
_replica: Replica | None = None
#: the node this thread just finished, for ``NodeTask.on_success`` to record
_finished = threading.local()
#: Share of the node timeout a node may wait at cato+'s gate before going back to its
#: queue: the rest is its run, and both together stay under the visibility timeout.
MAX_HOLD = 0.5
#: An LLM node re-profiles the engine only with this many streamed chunks: fewer give no
#: per-token time worth the name.
REPROFILE_MIN_TOKENS = 8


def set_replica(replica: Replica | None) -> None:
    global _replica
    _replica = replica


def current_replica() -> Replica:
    if _replica is None:
        raise RuntimeError("no replica: node tasks run only inside `cato-mq worker`")
    return _replica


def _run_step(
    replica: Replica, state: dict[str, Any], spec: CodingTask, index: int, node: Node,
    writer: TokenWriter | None, timeout: float,
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
        temperature=task["temperature"],
        seed=int(rid[:8], 16) + index,  # same text on redelivery
    )
    assert node.template is not None
    timing: dict[str, float] = {}
    try:
        detail = steps.llm(
            task, outputs, node.template,
            lambda prompt: replica.generate(f"{rid}-{index}", prompt, params, timeout, timing), writer,
        )
    finally:
        writer.close()  # the node's last chunk precedes its record in the stream
    return {**detail, **timing, "tokens": writer.deltas}


@contextlib.contextmanager
def _admission(
    task: Task, replica: Replica, state: dict[str, Any], spec: CodingTask, node: Node, writer: TokenWriter | None,
    options: dict[str, Any],
) -> Iterator[None]:
    """cato+: hold the node until the replica's gate admits it (``workers.gate``), or
    republish it (Celery's retry keeps the rest of the chain) when the gate gives it up."""
    gate, speed = replica.gate, replica.speed
    if gate is None or speed is None or writer is None:
        yield
        return
    due, rest = options.get("due"), options.get("rest")
    assert node.template is not None
    prompt = steps.build_prompt(state["task"], state["outputs"], node.template)  # its prefill
    ticket = Ticket(options["deadline"], spec.effective_max_tokens,
                    node.streams and spec.effective_sla.metric == "ttft", lambda: writer.deltas,
                    prompt_tokens=speed.prompt_tokens(prompt))
    tier = str((task.request.delivery_info or {}).get("routing_key", "")).rpartition(".")[2]
    verdict = gate.enter(
        ticket, lambda now: due is not None and rest is not None and admission.lost(now, due, rest),
        demotable=tier != Tier.best_effort, max_wait_s=replica.settings.node_timeout_s * MAX_HOLD,
    )
    if verdict is not Verdict.admitted:
        dest = (
            {"queue": keys.queue(options["pool"], Tier.best_effort), "priority": PRIORITY[Tier.best_effort]}
            if verdict is Verdict.demote else destination(options, "cato+")
        )
        raise task.retry(countdown=0, max_retries=None, **dest)
    try:
        yield
        if not ticket.shared and writer.first_at is not None and writer.deltas >= REPROFILE_MIN_TOKENS:
            # online re-profiling: this node had the engine to itself
            speed.observe(1, (time.time() - writer.first_at) / (writer.deltas - 1))
    finally:
        gate.leave(ticket)


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
    )


def _graph(state: dict[str, Any], task: CodingTask) -> tuple[Node, ...]:
    # "steps" overrides the kind's graph; only `cato-mq bench` uses it (no-op chains)
    if "steps" in state:
        return tuple(Node(step) for step in state["steps"])
    return graph_for(task.kind)


class NodeTask(Task):  # type: ignore[misc]
    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        """Record the node once Celery has published the next link.

        After the publish, so a done marker never exists for a node whose next link was
        not sent (a crash in between redelivers the node: at least once; readers keep the
        first ``end`` and drop repeated stream chunks by offset). The last node is
        recorded here, before its ack, as its ``end`` is what the client waits for; the
        others go to the outbox, so the next node does not wait for their write.
        """
        pending = getattr(_finished, "value", None)
        if pending is None:
            return
        _finished.value = None
        replica = current_replica()
        if pending[0].result_json is None:
            replica.outbox.defer(*pending)
        else:
            replica.ledger.finish(*pending)


@app.task(name=NODE_TASK, bind=True, base=NodeTask)
def node(
    self: Task, state: dict[str, Any], *, pool: str, index: int, deadline: float, expect: float,
    due: float | None = None, rest: float | None = None,
) -> dict[str, Any]:
    replica = current_replica()
    cutoff = time.monotonic() + replica.settings.node_timeout_s  # time held at the gate included
    rid = state["rid"]
    info = self.request.delivery_info or {}
    redelivered = bool(info.get("redelivered"))
    if redelivered and replica.redis.exists(keys.node_done(rid, index)):
        raise Ignore()  # finished before its worker died un-acked; the next link is out already
    task = CodingTask.model_validate(state["task"])
    graph = _graph(state, task)
    spec = graph[index]
    queued_at = state["nodes"][-1]["ended_at"] if state["nodes"] else state["published_at"]
    writer = TokenWriter(replica.outbox, rid, index, replica.name) if spec.step == "llm" else None
    options = {"pool": pool, "index": index, "deadline": deadline, "expect": expect, "due": due, "rest": rest}
    with replica.busy(), _admission(self, replica, state, task, spec, writer, options):
        started = time.time()
        try:
            detail = _run_step(replica, state, task, index, spec, writer, cutoff - time.monotonic())
        except Exception as exc:
            pipe = replica.redis.pipeline(transaction=False)
            pipe.xadd(keys.stream(rid), {"t": "err", "d": f"node {index} ({spec.step}) failed: {exc}"})
            pipe.expire(keys.stream(rid), replica.settings.result_ttl_s)
            pipe.hincrby(replica.ledger.window_key(replica.pool, time.time()), "failed", 1)
            pipe.execute()
            raise
    ended = time.time()
    first_at = writer.first_at if writer else None
    if spec.streams and first_at is not None and state.get("first_token_at") is None:
        state["first_token_at"] = first_at
    sla = task.effective_sla
    done_at = first_at if spec.streams and sla.metric == "ttft" and first_at is not None else ended
    record = NodeRecord(
        index=index, step=spec.step, tier=str(info.get("routing_key", "")).rpartition(".")[2],
        worker=replica.name, redelivered=redelivered, deadline=deadline, queued_at=queued_at,
        started_at=started, ended_at=ended, met_deadline=done_at <= deadline, detail=detail,
    )
    state["nodes"].append(record.model_dump(mode="json"))

    last = index == len(graph) - 1
    result = _result(state, task) if last else None
    _finished.value = (
        Finished(
            request_id=rid, pool=pool, index=index, record_json=record.model_dump_json(),
            result_json=result.model_dump_json() if result else None,
            node_missed=not record.met_deadline, request_missed=bool(result and not result.met_sla),
            observed=_observed(spec, started, ended, writer),
        ),
        ended,
    )
    return state
