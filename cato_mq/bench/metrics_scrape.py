"""``cato-mq bench metrics``: how long a scrape of the metrics endpoint takes with many
requests recorded.

The requests are recorded the way workers record them: every node of each request's graph
through the real ledger script (``Ledger.write``, pipelined as the outbox does), with
latencies drawn around each kind's SLA so met and missed both occur, spread over the
configured pools. A registry of ``--replicas`` entries stands for a busy fleet. Then
``--scrapes`` HTTP GETs of ``cato-mq metrics``'s own server are timed, one after another.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import redis

from cato_mq.fleet import launch
from cato_mq.graphs import GRAPHS
from cato_mq.metrics.serve import server
from cato_mq.schemas import DEFAULT_SLA, Kind
from cato_mq.settings import Settings
from cato_mq.state import keys, registry
from cato_mq.state.ledger import Finished, Ledger

#: Outcomes written per pipeline: the outbox's batches are of this order.
BATCH = 200


def record(client: redis.Redis[str], settings: Settings, requests: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    ledger = Ledger(client, settings.result_ttl_s, settings.window_s)
    kinds, tiers = list(Kind), list(keys.TIERS)
    batch: list[tuple[Finished, float]] = []
    now = time.time()
    for i in range(requests):
        kind, pool = kinds[i % len(kinds)], settings.pools[i % len(settings.pools)]
        metric, sla = DEFAULT_SLA[kind]
        e2e = rng.uniform(0.2, 2.0) * sla
        ttft = rng.uniform(0.05, 0.6) * e2e
        missed = (ttft if metric == "ttft" else e2e) > sla
        rid, graph = uuid.uuid4().hex, GRAPHS[kind]
        for index, node in enumerate(graph):
            last = index == len(graph) - 1
            batch.append((Finished(
                rid, pool, index, "{}", "{}" if last else None, False, missed and last, {},
                task_id=keys.node_task_id(rid, index, node.step), step=node.step, tier=rng.choice(tiers),
                kind=kind.value, ttft_s=ttft if last else None, e2e_s=e2e if last else None,
            ), now))
        if len(batch) >= BATCH or i == requests - 1:
            ledger.write(batch, [])
            batch = []


def fleet(client: redis.Redis[str], settings: Settings, replicas: int) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(replicas):
        pool = settings.pools[i % len(settings.pools)]
        entry = registry.Entry(i % 8, 8, time.time() + 3600, "ready", 1.0)  # live through the run
        registry.write(pipe, pool, f"{pool}-sim-d{i}@bench", entry, settings.heartbeat_s)
    pipe.execute()


def scrape_times(url: str, scrapes: int) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(scrapes):
        began = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as reply:
            size = len(reply.read())
        times.append(time.perf_counter() - began)
    return times, size


def run(redis_url: str, requests: int, scrapes: int, replicas: int) -> dict[str, Any]:
    settings = Settings(redis_url=redis_url, pools=("default", "other"))
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    if client.dbsize():  # the fake requests would land in a real fleet's counters
        raise ValueError(f"bench metrics records {requests} made-up requests: give it an empty Redis, not {redis_url}")
    began = time.perf_counter()
    record(client, settings, requests)
    recorded_s = time.perf_counter() - began
    fleet(client, settings, replicas)
    httpd = server(client, "127.0.0.1", 0, settings)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/metrics"
        scrape_times(url, 2)  # warm: script cache, connection pool
        times, size = scrape_times(url, scrapes)
    finally:
        httpd.shutdown()
        httpd.server_close()
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "requests": requests, "replicas": replicas, "scrapes": scrapes, "exposition_bytes": size,
        "recorded_s": round(recorded_s, 2), "redis_used_memory": client.info("memory")["used_memory_human"],
        "median_ms": round(statistics.median(times) * 1000, 2), "p99_ms": round(p99 * 1000, 2),
    }


def main(args: argparse.Namespace) -> int:
    if args.requests < 1 or args.scrapes < 1 or args.replicas < 0:
        raise ValueError("--requests and --scrapes must be at least 1, --replicas at least 0")
    if args.redis_url:
        result = run(args.redis_url, args.requests, args.scrapes, args.replicas)
    else:
        with launch.LocalRedis() as local:
            result = run(local.url, args.requests, args.scrapes, args.replicas)
    print(f"scrape of cato-mq metrics with {result['requests']} requests recorded and {result['replicas']} "
          f"replicas: median {result['median_ms']} ms, p99 {result['p99_ms']} ms over {result['scrapes']} scrapes "
          f"({result['exposition_bytes']} bytes)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0
