"""The baseline of ``cato-mq bench overhead``: a bare Celery chain of no-op tasks.

Celery defaults except what the comparison needs to be fair: the same Redis, the same
threads pool with one thread, prefetch 1 and JSON. No router, no result backend.
"""

from __future__ import annotations

import json
import os
import time
from functools import lru_cache

import redis
from celery import Celery, chain

QUEUE = "bench.bare"
DONE_KEY = "cato:bench:bare:done"
URL = os.environ.get("CATO_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("bare", broker=URL)
app.conf.update(
    task_default_queue=QUEUE,
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@lru_cache(maxsize=1)
def _client() -> redis.Redis[bytes]:
    return redis.Redis.from_url(URL)


@app.task(name="bench.noop")
def noop(times: list[list[float]], last: bool = False) -> list[list[float]]:
    """Record [start, end] wall times; the last link hands the list back to the bench."""
    started = time.time()
    times.append([started, time.time()])
    if last:
        _client().rpush(DONE_KEY, json.dumps(times))
    return times


def publish_chain(links: int) -> None:
    sigs = [noop.s([]), *(noop.s() for _ in range(links - 2)), noop.s(last=True)]
    chain(*sigs).apply_async()
