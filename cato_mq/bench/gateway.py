"""``cato-mq bench gateway``: what the HTTP gateway adds, and how many streams it holds.

One run, on a private Redis with simulated-engine workers and ``cato-mq gateway`` in its own
process (as a user runs it):

* **Latency.** The same completion request, one at a time, alternating between the Python
  client (``submit`` + ``stream``) and the gateway (``POST /v1/completions``, ``stream``,
  read as SSE by httpx), so drift on a shared machine hits both alike. TTFT is the client's
  send to its first piece of text, E2E to the end of the answer. Goal: at most 2 ms more
  TTFT at p50, and an E2E ratio of at most 1.05.
* **Open streams.** ``--streams`` SSE streams opened at once on slowed workers (nothing
  finishes meanwhile), held while the gateway's resident memory is read, then all closed
  by the client: every request is then cancelled, which the run checks too. Goal: 1,000
  streams, no error, bounded memory per stream.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from cato_mq.bench.overhead import pct
from cato_mq.fleet import launch
from cato_mq.state import keys

PROMPT = "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    "


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _direct(max_tokens: int) -> tuple[float, float]:
    from cato_mq import CodingTask, submit

    t0 = time.perf_counter()
    first = None
    for _ in submit(CodingTask(kind="completion", prompt=PROMPT, max_tokens=max_tokens)).stream(timeout=30):
        first = first or time.perf_counter()
    end = time.perf_counter()
    assert first is not None
    return first - t0, end - t0


def _through(client: httpx.Client, url: str, max_tokens: int) -> tuple[float, float]:
    body = {"model": "default", "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    t0 = time.perf_counter()
    first = None
    with client.stream("POST", f"{url}/v1/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("data: {") and first is None and json.loads(line[6:])["choices"][0]["text"]:
                first = time.perf_counter()
    end = time.perf_counter()
    assert first is not None
    return first - t0, end - t0


def latency(url: str, requests: int, max_tokens: int) -> dict[str, Any]:
    samples: dict[str, list[tuple[float, float]]] = {"direct": [], "gateway": []}
    with httpx.Client(timeout=30) as client:
        for i in range(requests + 10):
            a, b = _direct(max_tokens), _through(client, url, max_tokens)
            if i >= 10:  # warm-up dropped
                samples["direct"].append(a)
                samples["gateway"].append(b)
    out: dict[str, Any] = {}
    for name, pairs in samples.items():
        ttft, e2e = [p[0] * 1000 for p in pairs], [p[1] * 1000 for p in pairs]
        out[name] = {"ttft_p50_ms": pct(ttft, 0.5), "ttft_p99_ms": pct(ttft, 0.99),
                     "e2e_p50_ms": pct(e2e, 0.5), "e2e_p99_ms": pct(e2e, 0.99)}
    d, g = out["direct"], out["gateway"]
    out["ttft_p50_added_ms"] = g["ttft_p50_ms"] - d["ttft_p50_ms"]
    out["e2e_p50_ratio"] = g["e2e_p50_ms"] / d["e2e_p50_ms"]
    out["e2e_p99_ratio"] = g["e2e_p99_ms"] / d["e2e_p99_ms"]
    return out


async def _hold(url: str, n: int, pid: int) -> dict[str, Any]:
    """Open ``n`` streams, read the gateway's memory with all of them open, close them all."""
    errors: list[str] = []
    opened = asyncio.Event()
    count = 0
    release = asyncio.Event()

    async def one(client: httpx.AsyncClient, i: int) -> None:
        nonlocal count
        body = {"model": "default", "prompt": f"{PROMPT}# {i}", "max_tokens": 4000, "stream": True}
        try:
            async with client.stream("POST", f"{url}/v1/completions", json=body) as r:
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {(await r.aread())[:200]!r}")
                    return
                count += 1
                if count == n:
                    opened.set()
                await release.wait()  # hang up with the stream open
        except httpx.HTTPError as exc:
            errors.append(repr(exc))

    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        idle = rss_mib(pid)
        t0 = time.perf_counter()
        tasks = [asyncio.create_task(one(client, i)) for i in range(n)]
        try:
            await asyncio.wait_for(opened.wait(), 300)
        except TimeoutError:
            errors.append(f"only {count} of {n} streams opened in 300 s")
        open_s = time.perf_counter() - t0
        await asyncio.sleep(1.0)
        health = (await client.get(f"{url}/health")).json()
        held = rss_mib(pid)
        release.set()
        await asyncio.gather(*tasks)
    return {"streams": n, "opened": count, "open_s": open_s, "errors": errors[:5], "error_count": len(errors),
            "gateway_open_streams": health.get("open_streams"), "rss_idle_mib": idle, "rss_held_mib": held,
            "kib_per_stream": (held - idle) * 1024 / max(1, count)}


def run(args: argparse.Namespace, url_redis: str, workdir: Path) -> dict[str, Any]:
    client = redis.Redis.from_url(url_redis, decode_responses=True)
    os.environ["CATO_REDIS_URL"] = url_redis
    from cato_mq import app as cato_app

    cato_app.reset()
    procs = []
    try:
        port = launch.free_port()
        gw = launch.start_cli(url_redis, ["gateway", "--port", str(port), "-l", "WARNING"], log=workdir / "gw.log")
        procs.append(gw)
        procs.append(launch.start_worker(url_redis, ["--pool", "default", "-c", "16"], log=workdir / "w0.log"))
        launch.wait_replicas(client, "default", 1)
        url = f"http://127.0.0.1:{port}"
        _wait_http(url)
        result: dict[str, Any] = {"latency": latency(url, args.requests, args.max_tokens)}
        # open streams on slowed replicas: nothing finishes while they are held
        launch.stop(procs[1:])
        del procs[1:]
        client.delete(keys.replicas("default"))
        for d in range(2):
            procs.append(launch.start_worker(url_redis, ["--pool", "default", "--device", str(d), "-c", "64",
                                                         "--time-scale", "50"], log=workdir / f"slow{d}.log"))
        launch.wait_replicas(client, "default", 2)
        before = int(client.hget(keys.cancelled_counts(), "default") or 0)
        result["streams"] = asyncio.run(_hold(url, args.streams, gw.pid))
        until = time.monotonic() + 60
        while time.monotonic() < until and int(client.hget(keys.cancelled_counts(), "default") or 0) - before \
                < result["streams"]["opened"]:
            time.sleep(0.5)  # queued nodes are counted as workers pop and skip them
        result["streams"]["cancelled"] = int(client.hget(keys.cancelled_counts(), "default") or 0) - before
        return result
    finally:
        launch.stop(procs)


def _wait_http(url: str) -> None:
    until = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/health", timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > until:
                raise
            time.sleep(0.1)


def report(r: dict[str, Any]) -> str:
    lat, s = r["latency"], r["streams"]
    lines = ["gateway vs direct submit (ms)      TTFT p50   TTFT p99    E2E p50    E2E p99"]
    for name in ("direct", "gateway"):
        x = lat[name]
        lines.append(f"  {name:<31}{x['ttft_p50_ms']:>9.2f}  {x['ttft_p99_ms']:>9.2f}  {x['e2e_p50_ms']:>9.2f}"
                     f"  {x['e2e_p99_ms']:>9.2f}")
    lines.append(f"  TTFT p50 added {lat['ttft_p50_added_ms']:+.2f} ms (goal <= 2), E2E p50 ratio "
                 f"{lat['e2e_p50_ratio']:.3f} (goal <= 1.05), p99 ratio {lat['e2e_p99_ratio']:.3f}")
    lines.append(f"open streams: {s['opened']}/{s['streams']} opened in {s['open_s']:.1f} s, {s['error_count']} "
                 f"errors; gateway RSS {s['rss_idle_mib']:.0f} -> {s['rss_held_mib']:.0f} MiB, "
                 f"{s['kib_per_stream']:.1f} KiB per stream; cancelled on hang-up: {s['cancelled']}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="cato-bench-gw-") as tmp:
        if args.redis_url:
            result = run(args, args.redis_url, Path(tmp))
        else:
            with launch.LocalRedis() as server:
                result = run(args, server.url, Path(tmp))
    print(report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0
