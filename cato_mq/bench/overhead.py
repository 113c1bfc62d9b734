"""``cato-mq bench overhead``: what cato-mq's path adds per chain hop, against bare Celery.

Both systems run on the same Redis with one worker process each (threads pool, one
thread, prefetch 1), and chains are run one at a time, alternating between the systems
so drift on a shared machine hits both alike. Reported per hop, at p50 and p99:

* publish -> start: client publish to the first link starting to execute;
* link -> link: one link returning to the next link starting (includes cato's bookkeeping
  pipeline, the router and the broker round trip).

Also the routing decision time: the pure decision, and with its uncached Redis read.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from cato_mq.fleet import launch
from cato_mq.state import keys

LINKS = 10  #: links per chain: one publish->start sample and nine link->link samples
#: threads per worker, the same for both: a replica runs several requests at once,
#: so the next link is fetched while the previous one is still being acknowledged
CONCURRENCY = 4


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _bare_worker(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CATO_REDIS_URL": url}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "cato_mq.bench.bare_celery", "worker", "-P", "threads",
         "-c", str(CONCURRENCY), "-Q", "bench.bare", "--prefetch-multiplier", "1", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "-l", "WARNING"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _bare_chain(client: redis.Redis[str]) -> tuple[float, list[list[float]]]:
    from cato_mq.bench import bare_celery

    published = time.time()
    bare_celery.publish_chain(LINKS)
    popped = client.blpop([bare_celery.DONE_KEY], timeout=30)
    if popped is None:
        raise TimeoutError("bare Celery chain did not finish in 30 s")
    times: list[list[float]] = json.loads(popped[1])
    return published, times


def _cato_chain() -> tuple[float, list[list[float]]]:
    from cato_mq.client import submit_steps

    published = time.time()
    result = submit_steps(["noop"] * LINKS).result(timeout=30)
    return published, [[n.started_at, n.ended_at] for n in result.nodes]


def _hops(published: float, times: list[list[float]]) -> tuple[float, list[float]]:
    first = times[0][0] - published
    links = [times[i + 1][0] - times[i][1] for i in range(len(times) - 1)]
    return first, links


def routing_cost(samples: int = 20_000) -> dict[str, float]:
    from cato_mq.app import redis_client
    from cato_mq.policy.tiers import tier_for
    from cato_mq.state.pool import read_pool

    snap = read_pool(redis_client(), "default", 3.0)
    now = time.time()
    pure = []
    for i in range(samples):
        t0 = time.perf_counter_ns()
        tier_for(snap, now + (i % 7) * 0.1, 0.3, now)
        pure.append((time.perf_counter_ns() - t0) / 1000)
    with_io = []
    for _ in range(samples // 10):
        t0 = time.perf_counter_ns()
        tier_for(read_pool(redis_client(), "default", 3.0), now + 1, 0.3, now)
        with_io.append((time.perf_counter_ns() - t0) / 1000)
    return {
        "decision_p50_us": pct(pure, 0.5), "decision_p99_us": pct(pure, 0.99),
        "decision_with_read_p50_us": pct(with_io, 0.5), "decision_with_read_p99_us": pct(with_io, 0.99),
    }


def overhead(url: str, hops: int) -> dict[str, Any]:
    from cato_mq import app as cato_app

    os.environ["CATO_REDIS_URL"] = url
    cato_app.reset()
    client = redis.Redis.from_url(url, decode_responses=True)
    procs = [_bare_worker(url),
             launch.start_worker(url, ["--pool", "default", "-c", str(CONCURRENCY), "-l", "WARNING"])]
    try:
        launch.wait_replicas(client, "default", 1, procs=procs[1:])
        _bare_chain(client)  # warm both paths: connections, imports, scripts
        _cato_chain()
        samples: dict[str, dict[str, list[float]]] = {
            s: {"first": [], "link": []} for s in ("bare", "cato")
        }
        chains = max(1, hops // (LINKS - 1))
        for i in range(chains):
            for name in ("bare", "cato"):
                first, links = _hops(*(_bare_chain(client) if name == "bare" else _cato_chain()))
                samples[name]["first"].append(first)
                samples[name]["link"] += links
            if (i + 1) % max(1, chains // 10) == 0:
                print(f"  {i + 1}/{chains} chains per system", file=sys.stderr)
    finally:
        launch.stop(procs)
    out: dict[str, Any] = {"chains_per_system": chains, "links_per_chain": LINKS}
    for name, s in samples.items():
        for kind, values in s.items():
            ms = [v * 1000 for v in values]
            out[f"{name}_{kind}_p50_ms"] = pct(ms, 0.5)
            out[f"{name}_{kind}_p99_ms"] = pct(ms, 0.99)
            out[f"{name}_{kind}_mean_ms"] = statistics.fmean(ms)
    for kind in ("first", "link"):
        for q in ("p50", "p99"):
            out[f"ratio_{kind}_{q}"] = out[f"cato_{kind}_{q}_ms"] / out[f"bare_{kind}_{q}_ms"]
    out |= routing_cost()
    client.delete(keys.replicas("default"))
    return out


def report(r: dict[str, Any]) -> str:
    rows = [
        "| hop | bare Celery p50 | cato-mq p50 | ratio | bare Celery p99 | cato-mq p99 | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, label in (("first", "publish -> start"), ("link", "link -> next link")):
        rows.append(
            f"| {label} | {r[f'bare_{kind}_p50_ms']:.2f} ms | {r[f'cato_{kind}_p50_ms']:.2f} ms | "
            f"{r[f'ratio_{kind}_p50']:.2f} | {r[f'bare_{kind}_p99_ms']:.2f} ms | "
            f"{r[f'cato_{kind}_p99_ms']:.2f} ms | {r[f'ratio_{kind}_p99']:.2f} |"
        )
    rows += [
        "",
        "| routing decision | p50 | p99 |",
        "|---|---|---|",
        f"| pure (`tier_for`) | {r['decision_p50_us']:.1f} us | {r['decision_p99_us']:.1f} us |",
        f"| with its Redis read (uncached) | {r['decision_with_read_p50_us']:.0f} us "
        f"| {r['decision_with_read_p99_us']:.0f} us |",
    ]
    return "\n".join(rows)


def main(args: argparse.Namespace) -> int:
    if args.which != "overhead":
        raise ValueError(f"unknown benchmark {args.which!r}")
    if args.hops < 9:
        raise ValueError("--hops must be at least 9 (one chain)")
    print(f"bench overhead: {args.hops} hops per system, chains of {LINKS}", file=sys.stderr)
    if args.redis_url:
        result = overhead(args.redis_url, args.hops)
    else:
        with launch.LocalRedis() as server:
            result = overhead(server.url, args.hops)
    print(report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0
