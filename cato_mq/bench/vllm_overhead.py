"""``cato-mq bench-vllm``: the same vLLM engine through cato-mq and called directly, in one run.

One worker process (``cato-mq worker --engine vllm``) on a private Redis, and the same
engine (same pool spec) in this process. On the same prompts, alternating between the
two so drift on a shared machine hits both alike:

* light load: one summarization request at a time (a single LLM node): TTFT and E2E as
  the client sees them (from ``submit`` to the first streamed piece / the end);
* B at once: the same, plus the makespan; batching gain = throughput at B / at 1;
* the worker's cold start (process start to first task accepted) and the direct engine's start;
* the simulated engine calibrated from a profile measured in this run, on the same
  prompts in-process, against the direct engine: its p50 E2E error.

Both engines idle while the other is measured (an idle vLLM engine core sleeps).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from cato_mq.engine import measure
from cato_mq.engine.tiny_model import TINY_POOL
from cato_mq.fleet import launch
from cato_mq.fleet.pools import pool_spec, write_pools
from cato_mq.prompts import build_prompt
from cato_mq.schemas import CodingTask
from workers.engine import Engine, SamplingParams
from workers.loop import LoopThread

T = TypeVar("T")
#: (start on the perf_counter clock, TTFT, E2E) of one request
Sample = tuple[float, float, float]
#: A tiny model's pool as the tests and CI use it; ``ignore_eos`` fixes the output length.


def _task(pool: str, prompt: str, max_tokens: int) -> CodingTask:
    return CodingTask(kind="summarization", prompt=prompt, pool=pool, max_tokens=max_tokens,
                      sla={"metric": "e2e", "seconds": 600})


def cato_one(task: CodingTask) -> Sample:
    from cato_mq.client import submit

    t0 = time.perf_counter()
    ttft = None
    for _ in submit(task).stream(timeout=600):
        if ttft is None:
            ttft = time.perf_counter() - t0
    return t0, ttft if ttft is not None else float("nan"), time.perf_counter() - t0


def cato_batch(tasks: Sequence[CodingTask]) -> list[Sample]:
    """All requests at once, as one client with many in flight: submit each, then follow
    every stream with one blocking read (a thread per request would measure the GIL)."""
    from cato_mq.client import follow, submit

    sent: dict[str, float] = {}
    handles = []
    for task in tasks:
        sent_at = time.perf_counter()
        h = submit(task)
        sent[h.request_id] = sent_at
        handles.append(h)
    first: dict[str, float] = {}
    done: dict[str, float] = {}
    for h, kind, _ in follow(handles, timeout=600):
        now = time.perf_counter()
        if kind == "tok":
            first.setdefault(h.request_id, now)
        elif kind in ("end", "err"):
            done[h.request_id] = now
    return [
        (sent[r], first.get(r, float("nan")) - sent[r], done[r] - sent[r]) for r in (h.request_id for h in handles)
    ]


async def engine_one(engine: Engine, rid: str, prompt: str, max_tokens: int) -> Sample:
    t0 = time.perf_counter()
    ttft = None
    async for _ in engine.generate(rid, prompt, SamplingParams(max_tokens=max_tokens)):
        if ttft is None:
            ttft = time.perf_counter() - t0
    return t0, ttft if ttft is not None else float("nan"), time.perf_counter() - t0


async def engine_batch(engine: Engine, tag: str, prompts: Sequence[str], max_tokens: int) -> list[Sample]:
    return await asyncio.gather(*(engine_one(engine, f"{tag}-{i}", p, max_tokens) for i, p in enumerate(prompts)))


def p50(values: Sequence[float]) -> float:
    return statistics.median(values)


def makespan(samples: Sequence[Sample]) -> float:
    return max(t0 + e2e for t0, _, e2e in samples) - min(t0 for t0, _, _ in samples)


def _sim(
    profile: Any, prompts: Sequence[str], requests: int, batch: int, rounds: int, max_tokens: int
) -> dict[str, list[Any]]:
    from workers.sim_engine import SimEngine

    async def go() -> dict[str, list[Any]]:
        engine = SimEngine(profile.sim)
        await engine.start()
        light = [await engine_one(engine, f"s{i}", p, max_tokens) for i, p in enumerate(prompts[:requests])]
        batches = [
            await engine_batch(engine, f"sb{r}", prompts[requests + r * batch : requests + (r + 1) * batch], max_tokens)
            for r in range(rounds)
        ]
        await engine.shutdown()
        return {"light": light, "batches": batches}

    return asyncio.run(go())


def run(args: argparse.Namespace, pools_file: str, workdir: Path) -> dict[str, Any]:
    from cato_mq.fleet.devices import pin_env, resolve_platform
    from workers import vllm_worker

    spec = pool_spec(pools_file, args.pool)
    platform = resolve_platform(args.platform)
    levels = [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= min(args.batch, spec.max_num_seqs)]
    # every measured request gets a prompt neither engine has seen: vLLM caches prefixes,
    # which would make a repeated prompt's prefill nearly free (the simulator has no cache)
    texts = measure.prompts(args.requests + args.rounds * args.batch + 1)
    tasks = [_task(args.pool, t, args.max_tokens) for t in texts]
    built = [build_prompt(t.model_dump(mode="json"), {}, "summarize") for t in tasks]
    out: dict[str, Any] = {"pool": args.pool, "platform": platform, "batch": args.batch,
                           "max_tokens": args.max_tokens, "requests": args.requests, "rounds": args.rounds}
    with launch.LocalRedis() as server, measure.pointed_at(server.url):
        wargs = ["--pool", args.pool, "--engine", "vllm", "--pools-file", pools_file, "--platform", platform,
                 "--device", "0", "-c", str(max(args.batch, spec.max_num_seqs)), "-l", "WARNING"]
        print("bench-vllm: starting the worker (cold start)", file=sys.stderr)
        worker, out["worker_cold_start_s"] = measure.start_timed(server.url, wargs, args.pool, workdir / "worker.log")
        loop = LoopThread("bench-loop", timeout_s=600)
        try:
            os.environ.update(pin_env(platform, "0"))
            engine, _ = vllm_worker.build(args.pool, platform, None, pools_file)
            t0 = time.perf_counter()
            loop.run(engine.start())
            out["direct_engine_start_s"] = time.perf_counter() - t0
            print("bench-vllm: profiling the worker to calibrate the simulator", file=sys.stderr)
            prof = measure.measure(args.pool, spec, platform, out["worker_cold_start_s"], levels, 2, args.max_tokens)
            out["profile"] = json.loads(prof.model_dump_json())
            # warm both on a prompt the measured phases do not use
            cato_one(tasks[-1])
            loop.run(engine_one(engine, "warm", built[-1], args.max_tokens))
            print("bench-vllm: light load", file=sys.stderr)
            light: dict[str, list[Sample]] = {"cato": [], "direct": []}
            for i in range(args.requests):
                light["cato"].append(cato_one(tasks[i]))
                light["direct"].append(loop.run(engine_one(engine, f"l{i}", built[i], args.max_tokens)))
            print(f"bench-vllm: {args.batch} at once x {args.rounds}", file=sys.stderr)
            batches: dict[str, list[list[Sample]]] = {"cato": [], "direct": []}
            for r in range(args.rounds):
                lo, hi = args.requests + r * args.batch, args.requests + (r + 1) * args.batch
                batches["cato"].append(cato_batch(tasks[lo:hi]))
                batches["direct"].append(loop.run(engine_batch(engine, f"b{r}", built[lo:hi], args.max_tokens)))
            loop.run(engine.shutdown())
        finally:
            loop.close()
            launch.stop([worker])
    sim = _sim(prof, built, args.requests, args.batch, args.rounds, args.max_tokens)
    systems: dict[str, dict[str, list[Any]]] = {k: {"light": light[k], "batches": batches[k]} for k in light}
    systems["sim"] = sim
    for name, data in systems.items():
        lt, bt = data["light"], data["batches"]
        flat = [s for b in bt for s in b]
        out[name] = {
            "light_ttft_p50_s": p50([s[1] for s in lt]), "light_e2e_p50_s": p50([s[2] for s in lt]),
            "batch_ttft_p50_s": p50([s[1] for s in flat]), "batch_e2e_p50_s": p50([s[2] for s in flat]),
            "batch_makespan_p50_s": p50([makespan(b) for b in bt]),
        }
        m = out[name]
        m["batching_gain"] = args.batch / m["batch_makespan_p50_s"] * m["light_e2e_p50_s"]
    return out


def report(r: dict[str, Any]) -> str:
    c, d, s, b = r["cato"], r["direct"], r["sim"], r["batch"]

    def ms(v: float) -> str:
        return f"{v * 1000:.1f} ms"

    def row(label: str, key: str, diff: bool = False) -> str:
        vs = f"+{ms(c[key] - d[key])}" if diff else f"{c[key] / d[key]:.3f}"
        return (f"| {label} | {ms(d[key])} | {ms(c[key])} | {vs} | {ms(s[key])} | "
                f"{(s[key] / d[key] - 1) * 100:+.1f} % |")

    u = r["profile"]["decode"]
    lines = [
        f"| {r['max_tokens']} tokens, summarization | direct vLLM | through cato-mq | cato-mq vs direct "
        "| sim (from profile) | sim vs direct |",
        "|---|---|---|---|---|---|",
        row("TTFT p50, 1 at a time", "light_ttft_p50_s", diff=True),
        row("E2E p50, 1 at a time", "light_e2e_p50_s"),
        row(f"TTFT p50, {b} at once", "batch_ttft_p50_s", diff=True),
        row(f"E2E p50, {b} at once", "batch_e2e_p50_s"),
        row(f"makespan of {b} at once (p50 of rounds)", "batch_makespan_p50_s"),
        f"| batching gain (throughput at {b} / at 1) | {d['batching_gain']:.2f}x | {c['batching_gain']:.2f}x "
        f"| {c['batching_gain'] / d['batching_gain'] * 100:.0f} % of direct | {s['batching_gain']:.2f}x | |",
        "",
        f"Worker cold start (process start -> first task accepted): {r['worker_cold_start_s']:.1f} s; "
        f"direct engine start in-process: {r['direct_engine_start_s']:.1f} s.  ",
        f"Profile: decode USL lambda {u['params']['lambda']:.0f} tok/s, sigma {u['params']['sigma']:.3f}, "
        f"kappa {u['params']['kappa']:.5f}, R^2 {u['r2']:.3f}; prefill R^2 {r['profile']['prefill']['r2']:.3f}.",
    ]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    if args.batch < 1 or args.requests < 1 or args.rounds < 1 or args.max_tokens < 2:
        raise ValueError("--batch, --requests and --rounds must be at least 1, --max-tokens at least 2")
    # vLLM logs to stdout by default; the table goes there
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    with tempfile.TemporaryDirectory(prefix="cato-bench-vllm-") as tmp:
        workdir = Path(tmp)
        if args.pools_file:
            pools_file = str(Path(args.pools_file).resolve())
        else:
            from cato_mq.engine.tiny_model import make_tiny_model

            print("bench-vllm: generating the tiny model", file=sys.stderr)
            model = make_tiny_model(workdir / "tiny")
            pools_file = str(write_pools(workdir / "pools.json", {args.pool: {"model": str(model), **TINY_POOL}}))
        result = run(args, pools_file, workdir)
    print(report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0
