"""A full backlog through the gateway: 429 with Retry-After in OpenAI's shape, nothing queued."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import redis

from cato_mq import app as cato_app
from cato_mq.fleet import launch
from cato_mq.state import keys
from tests.gateway.conftest import Gateway, start_gateway


def queued(rds: redis.Redis) -> int:
    return sum(rds.llen(q) for t in keys.TIERS for q in keys.queue_lists("default", t))


@pytest.fixture
def slow_fleet(redis_url: str, tmp_path: Path) -> Iterator[tuple[Gateway, redis.Redis]]:
    """One batch slot on an engine 200 times slower, and a gateway whose pool may hold one
    queued node (CATO_MAX_BACKLOG=1)."""
    rds = redis.Redis.from_url(redis_url, decode_responses=True)
    rds.flushdb()
    cato_app.reset()
    worker = launch.start_worker(redis_url, ["--pool", "default", "-c", "1", "--time-scale", "200"],
                                 log=tmp_path / "worker.log")
    gw = start_gateway(redis_url, tmp_path, env={"CATO_MAX_BACKLOG": "1"})
    try:
        launch.wait_replicas(rds, "default", 1, procs=[worker])
        yield gw, rds
    finally:
        launch.stop([gw.proc, worker])
        rds.close()


def test_a_full_backlog_is_refused_with_429_and_retry_after(slow_fleet: tuple[Gateway, redis.Redis]) -> None:
    gw, rds = slow_fleet
    client = gw.client()
    assert isinstance(client, openai.OpenAI)
    # the first request takes the only slot (its stream is held open, unread); the second waits in the queue
    running = client.completions.create(model="default/summarization", prompt="def f(): pass", max_tokens=50,
                                        stream=True)
    until = time.monotonic() + 30
    while rds.hlen(keys.replicas("default")) and queued(rds) and time.monotonic() < until:
        time.sleep(0.05)  # the worker has popped the first request
    waiting = client.completions.create(model="default/summarization", prompt="def g(): pass", max_tokens=50,
                                        stream=True)
    assert queued(rds) == 1
    streams = len(rds.keys("cato:stream:*"))
    with pytest.raises(openai.RateLimitError) as err:
        client.completions.create(model="default/summarization", prompt="def h(): pass", max_tokens=5)
    assert err.value.status_code == 429
    body = err.value.body
    assert isinstance(body, dict) and body["code"] == "backlog_full" and "CATO_MAX_BACKLOG" in body["message"]
    assert int(err.value.response.headers["retry-after"]) >= 1
    assert queued(rds) == 1 and len(rds.keys("cato:stream:*")) == streams  # nothing queued for it
    running.close()
    waiting.close()
