"""The goodput benchmark on the real runtime: a throwaway Redis, real ``cato-mq worker``
processes on the sim engine, and the open-loop workload submitted at its arrival times.

The routing policy is chosen by configuration (``CATO_ROUTING``: ``cato``, ``cato+``, ``fifo``),
not by a fork of the code. The fleet is static, so replica-seconds are the replicas times
the same horizon the simulator uses (last arrival + tail), and utilization comes from the
per-node start/end times that every result carries.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from cato_mq import app as cato_app
from cato_mq.bench.scoring import Outcome, Span
from cato_mq.bench.workload import Request
from cato_mq.engine.cpu import CpuMeter, CpuUse
from cato_mq.engine.measure import completion_tokens
from cato_mq.fleet import launch
from cato_mq.schemas import CodingTask, Result

#: Results still missing this long after the horizon are counted as unfinished.
GRACE_S = 10.0


@dataclass
class RuntimeRun:
    outcomes: list[Outcome]
    provisioned: list[Span]
    busy: list[Span]
    late_submits: int  # arrivals the client sent more than 50 ms late (a loaded machine)
    tiers: dict[str, int]  # "kind step tier" -> nodes, as the router placed them
    estimates: dict[str, float]  # the pool's service-time estimates at the end
    #: per request that streamed, where its TTFT went (``ttft_parts``)
    ttft_parts: list[TtftParts] = field(default_factory=list)
    #: CPU the run's processes spent from the first submit to the last result (``meter=True``)
    cpu: CpuUse | None = None


@dataclass(frozen=True, slots=True)
class TtftParts:
    """A request's TTFT in three parts that add up to it: arrival to its LLM node starting
    (submit, earlier nodes, queue wait), the engine's own time to its first token, and the
    rest: the node's set-up before its engine call, and the first token's way from the
    engine's loop to the request's stream (thread hand-off, Redis write)."""

    to_engine: float
    engine: float
    delivery: float


def ttft_parts(res: Result) -> TtftParts | None:
    """None for a request without a first token, or without an LLM node that carries the
    engine's timing (``engine_ttft_s``)."""
    llm = next((n for n in res.nodes if n.step == "llm"), None)
    engine = llm.detail.get("engine_ttft_s") if llm is not None else None
    if llm is None or res.ttft_s is None or not isinstance(engine, float):
        return None
    arrived = res.nodes[-1].ended_at - res.e2e_s
    to_engine = llm.started_at - arrived
    return TtftParts(to_engine, engine, res.ttft_s - to_engine - engine)


def task_of(r: Request) -> CodingTask:
    fields: dict[str, object] = {
        "kind": r.kind, "prompt": r.prompt, "language": r.language, "max_tokens": r.max_tokens,
        "sla": {"metric": r.metric, "seconds": r.sla_s},
    }
    if r.target_language:
        fields["target_language"] = r.target_language
    return CodingTask.model_validate(fields)


def _outcome(res: Result) -> Outcome:
    misses = sum(not n.met_deadline for n in res.nodes)
    return Outcome(res.kind.value, res.ttft_s, res.e2e_s, res.met_sla, len(res.nodes), misses)


def run(
    requests: list[Request], routing: str, replicas: int, slots: int, time_scale: float, tail_s: float,
    logs: Path | None = None, redis_url: str | None = None, engine: Sequence[str] | None = None,
    meter: bool = False,
) -> RuntimeRun:
    """On ``redis_url`` (emptied first) if given, else on a throwaway local Redis.
    ``engine`` replaces the sim engine's worker arguments (``--engine vllm ...``). ``meter``:
    also the CPU the run spent (``engine.cpu``; needs psutil)."""
    engine = list(engine) if engine is not None else ["--engine", "sim", "--time-scale", str(time_scale)]
    if redis_url is not None:
        redis.Redis.from_url(redis_url).flushdb()
        return _fleet(redis_url, requests, routing, replicas, slots, engine, tail_s, logs, meter)
    with launch.LocalRedis() as server:
        return _fleet(server.url, requests, routing, replicas, slots, engine, tail_s, logs, meter)


def _fleet(
    url: str, requests: list[Request], routing: str, replicas: int, slots: int, engine: list[str], tail_s: float,
    logs: Path | None, meter: bool,
) -> RuntimeRun:
    logs = logs or Path(tempfile.mkdtemp(prefix="cato-goodput-"))
    env = {"CATO_POOLS": "default", "CATO_ROUTING": routing}
    saved = dict(os.environ)
    procs = []
    try:
        os.environ.update(env, CATO_REDIS_URL=url)
        cato_app.reset()
        client = redis.Redis.from_url(url, decode_responses=True)
        for i in range(replicas):
            procs.append(launch.start_worker(url, [
                "--pool", "default", "--device", str(i), *engine, "--concurrency", str(slots), "-l", "WARNING",
            ], env, logs / f"{routing}-worker-{i}.log"))
        launch.wait_replicas(client, "default", replicas, procs=procs)
        return _drive(requests, replicas, tail_s, meter)
    finally:
        launch.stop(procs)
        os.environ.clear()
        os.environ.update(saved)
        cato_app.reset()


def _drive(requests: list[Request], replicas: int, tail_s: float, meter: bool) -> RuntimeRun:
    from cato_mq.client import follow, submit

    tasks = [task_of(r) for r in requests]  # validated before the clock starts
    cpu = CpuMeter() if meter else None
    t0 = time.time() + 0.5
    handles, late = [], 0
    for r, task in zip(requests, tasks, strict=True):
        due = t0 + r.at
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)  # open loop: the arrival schedule, not a stand-in for synchronisation
        late += time.time() - due > 0.05
        handles.append(submit(task, arrived_at=due))
    horizon = max((r.at for r in requests), default=0.0) + tail_s
    results: dict[str, Result] = {}
    try:
        for h, kind, fields in follow(handles, timeout=max(1.0, t0 + horizon + GRACE_S - time.time())):
            if kind == "end":
                results[h.request_id] = Result.model_validate_json(fields["d"])
    except TimeoutError:
        pass  # whatever has not ended counts as unfinished
    use = None if cpu is None else cpu.read(sum(len(r.nodes) for r in results.values()),
                                            sum(map(completion_tokens, results.values())))
    outcomes, busy, parts = [], [], []
    tiers: dict[str, int] = {}
    for h, r in zip(handles, requests, strict=True):
        res = results.get(h.request_id)
        if res is None or res.e2e_s > horizon - r.at:
            outcomes.append(Outcome(r.kind.value, None, None, False, 0, 0))
            continue
        outcomes.append(_outcome(res))
        if (p := ttft_parts(res)) is not None:
            parts.append(p)
        for n in res.nodes:
            key = f"{res.kind.value} {n.step} {n.tier}"
            tiers[key] = tiers.get(key, 0) + 1
        busy += [Span(n.worker, n.started_at - t0, n.ended_at - t0) for n in res.nodes]
    provisioned = [Span(f"replica-{i}", 0.0, horizon) for i in range(replicas)]
    from cato_mq.app import redis_client
    from cato_mq.state import keys

    est = {k: float(v) for k, v in redis_client().hgetall(keys.estimates("default")).items()}
    return RuntimeRun(outcomes, provisioned, busy, late, dict(sorted(tiers.items())), est, parts, use)
