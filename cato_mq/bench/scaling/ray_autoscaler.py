"""``bench-scaling --policies ...,ray-serve``: the same workload on real Ray Serve, scaled by
Ray Serve's own autoscaler (the ``ray`` extra). Each request is one engine call (its LLM
node); it meets its SLA when its first token (TTFT kinds) or its end (E2E kinds) comes
within the SLA of its arrival.

The engine is the same simulated one as cato-mq's workers (profile, time scale, batch slots
as ``max_ongoing_requests``), and a replica pays the same model load in its constructor, so
Ray counts it as starting until then. Autoscaling is Ray Serve's ``target_ongoing_requests``
policy with the settings the queue-length baseline copies: target 2, bounds 1..3, and its
time constants (30 s / 600 s delays, 10 s metrics interval, 30 s look-back) divided by the
same time factor. Replica-seconds come from polling
``serve.status()``: every replica Ray holds (starting, running or stopping) counts.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from cato_mq.bench import ray_serve
from cato_mq.bench.scaling import result as sb
from cato_mq.bench.scaling.load import Load
from cato_mq.bench.scaling.result import PolicyRun
from cato_mq.bench.workload import Request

APP = "cato-scaling"
#: How often the driver reads Ray Serve's replica count for replica-seconds (each read is an
#: RPC to the Serve controller: reading more often loads the 2-core machine).
POLL_S = 1.0


def _deployment(factor: float) -> Any:
    # every time constant of Ray Serve's defaults divided alike: delays 30 s / 600 s, metrics
    # reported every 10 s and averaged over 30 s (unscaled, they would smooth the 15 s burst away)
    autoscaling = {"min_replicas": 1, "max_replicas": 3, "target_ongoing_requests": 2,
                   "upscale_delay_s": 30.0 / factor, "downscale_delay_s": 600.0 / factor,
                   "metrics_interval_s": 10.0 / factor, "look_back_period_s": 30.0 / factor}
    engine: Any = ray_serve.engine_deployment(sb.TIME_SCALE, sb.CONCURRENCY, sb.COLD_START_S * sb.TIME_SCALE,
                                              autoscaling_config=autoscaling)
    return engine.bind()


def run(factor: float, run_id: str, load: Load) -> PolicyRun:
    import ray
    from ray import serve

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        handle = serve.run(_deployment(factor), name=APP, route_prefix=None)
        return asyncio.run(_drive(handle, run_id, load))
    finally:
        serve.shutdown()
        ray.shutdown()


def _replicas() -> int:
    from ray import serve

    deployments = serve.status().applications[APP].deployments
    return sum(sum(d.replica_states.values()) for d in deployments.values())


async def _drive(handle: Any, run_id: str, load: Load) -> PolicyRun:
    began = time.time() + 0.5
    end = began + load.span_s + sb.TAIL_S
    counts: list[tuple[float, int]] = []

    async def poll() -> None:
        while time.time() < end:
            counts.append((time.time(), await asyncio.to_thread(_replicas)))
            await asyncio.sleep(POLL_S)

    async def one(r: Request) -> tuple[bool, float] | None:
        arrived = began + r.at
        await asyncio.sleep(max(0.0, arrived - time.time()))  # the open-loop arrival schedule
        try:
            call = await asyncio.wait_for(handle.generate.remote(r.prompt, r.max_tokens), 120)
        except Exception:
            return None
        done = call["first"] if r.metric == "ttft" and call["first"] is not None else call["ended"]
        return done - arrived <= r.sla_s, call["ended"] - call["began"]

    poller = asyncio.ensure_future(poll())
    answers = await asyncio.gather(*(one(r) for r in load.requests))
    await poller
    replica_s = sum(n * (t1 - t0) for (t0, n), (t1, _) in itertools.pairwise(counts) if t0 >= began)
    served = [a for a in answers if a is not None]
    busy = sum(b for _, b in served)
    good = sum(met for met, _ in served) / len(answers)
    peak = max((n for _, n in counts), default=0)
    return PolicyRun("ray-serve", run_id, len(answers), good, None, None, replica_s,
                   busy / (replica_s * sb.CONCURRENCY) if replica_s else 0.0, peak)
