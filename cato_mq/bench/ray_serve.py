"""The same workload on real Ray Serve (the ``ray`` extra): a peer no one here wrote.

The simulated engine (``workers.sim_engine.SimEngine``, same profile and time scale as the
cato-mq workers) is a Ray Serve deployment with ``max_ongoing_requests`` = the worker's
batch slots; each task graph is composed in a graph deployment that calls retrieval,
the engine and validation through deployment handles, so Ray Serve's own router
(power of two choices on ongoing requests) places every LLM call. All actors take zero
CPUs, which lets the fleet fit on a 2-core machine. The fleet is static (the paper's
fixed-replica experiment); replica-seconds and utilization are computed as for the
runtime, from the engine calls' start and end times.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from cato_mq.bench.runtime import RuntimeRun
from cato_mq.bench.scoring import Outcome, Span
from cato_mq.bench.workload import Request

#: Generous for a small run; a request not answered by then counts as unfinished.
RESULT_TIMEOUT_S = 120.0


def engine_deployment(time_scale: float, slots: int, load_s: float = 0.0, **options: Any) -> Any:
    """The sim engine as a Ray Serve deployment (``options``: replicas or autoscaling). A
    replica spends ``load_s`` in its constructor, the model load: Ray holds it as starting."""
    from ray import serve

    @serve.deployment(max_ongoing_requests=slots, ray_actor_options={"num_cpus": 0}, **options)
    class Engine:
        def __init__(self) -> None:
            from workers.sim_engine import SimEngine

            time.sleep(load_s)
            self.engine = SimEngine(time_scale=time_scale)
            self.starting: asyncio.Future[None] | None = None
            self.name = serve.get_replica_context().replica_id.unique_id

        async def generate(self, prompt: str, max_tokens: int) -> dict[str, Any]:
            from workers.engine import SamplingParams

            if self.starting is None:  # once, on the replica's own loop
                self.starting = asyncio.ensure_future(self.engine.start())
            await self.starting
            began, first = time.time(), None
            async for _ in self.engine.generate("r", prompt, SamplingParams(max_tokens=max_tokens, seed=0)):
                first = first or time.time()
            return {"replica": self.name, "began": began, "first": first, "ended": time.time()}

    return Engine


def _deployments(replicas: int, slots: int, time_scale: float) -> Any:
    from ray import serve

    engine: Any = engine_deployment(time_scale, slots, num_replicas=replicas)

    @serve.deployment(num_replicas=1, max_ongoing_requests=10_000, ray_actor_options={"num_cpus": 0})
    class Graph:
        def __init__(self, engine: Any) -> None:
            self.engine = engine

        async def __call__(self, task: dict[str, Any]) -> dict[str, Any]:
            from cato_mq.bench.peer_graph import run_graph

            calls = []

            async def llm(prompt: str) -> str:
                calls.append(await self.engine.generate.remote(prompt, task["max_tokens"]))
                return ""  # the sim engine's text is not kept; validation sees none

            await run_graph(task, llm)
            return {"calls": calls, "ended": time.time()}

    graph: Any = Graph  # serve.deployment's result carries .bind, which the type checker does not see
    return graph.bind(engine.bind())


def run(requests: list[Request], replicas: int, slots: int, time_scale: float, tail_s: float) -> RuntimeRun:
    import ray
    from ray import serve

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        handle = serve.run(_deployments(replicas, slots, time_scale), name="cato-bench", route_prefix=None)
        return asyncio.run(_drive(handle, requests, replicas, tail_s))
    finally:
        serve.shutdown()
        ray.shutdown()


async def _drive(handle: Any, requests: list[Request], replicas: int, tail_s: float) -> RuntimeRun:
    t0 = time.time() + 1.0
    late = 0

    async def one(r: Request) -> dict[str, Any] | None:
        nonlocal late
        await asyncio.sleep(max(0.0, t0 + r.at - time.time()))  # the open-loop arrival schedule
        late += time.time() - (t0 + r.at) > 0.05
        task: dict[str, Any] = {"kind": r.kind.value, "prompt": r.prompt, "language": r.language, "context": [],
                "target_language": r.target_language, "max_tokens": r.max_tokens, "temperature": 0.0}
        try:
            out: dict[str, Any] = await asyncio.wait_for(handle.remote(task), RESULT_TIMEOUT_S)
            return out
        except Exception:
            return None

    answers = await asyncio.gather(*(one(r) for r in requests))
    horizon = max((r.at for r in requests), default=0.0) + tail_s
    outcomes, busy = [], []
    for r, a in zip(requests, answers, strict=True):
        if a is None or a["ended"] - (t0 + r.at) > horizon - r.at:
            outcomes.append(Outcome(r.kind.value, None, None, False))
            continue
        arrived = t0 + r.at
        first = next((c["first"] for c in a["calls"] if c["first"] is not None), None)
        ttft = None if first is None else first - arrived
        e2e = a["ended"] - arrived
        measured = ttft if r.metric == "ttft" else e2e
        # Ray Serve has no node deadlines: no violations per node to count
        outcomes.append(Outcome(r.kind.value, ttft, e2e, measured is not None and measured <= r.sla_s))
        busy += [Span(c["replica"], c["began"] - t0, c["ended"] - t0) for c in a["calls"]]
    provisioned = [Span(f"ray-{i}", 0.0, horizon) for i in range(replicas)]
    return RuntimeRun(outcomes, provisioned, busy, late, {}, {})
