"""A worker cut off from Redis by a TCP proxy the test controls: it stays up, its nodes
run elsewhere meanwhile (redelivered after the visibility timeout), no stream shows
doubled text, no request is lost, and the worker serves again once the link is back."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from cato_mq import CodingTask, submit
from cato_mq.client import Handle
from cato_mq.fleet import launch
from tests.conftest import TEST_ENV, WorkerFactory
from tests.workers.proxy import Proxy

#: Longer than the visibility timeout: the cut-off worker's nodes are redelivered meanwhile.
CUT_S = float(TEST_ENV["CATO_VISIBILITY_TIMEOUT_S"]) + 3


@pytest.fixture
def proxy(redis_url: str, rds: redis.Redis) -> Iterator[Proxy]:
    p = Proxy(int(redis_url.rsplit(":", 1)[1].split("/")[0])).start()
    yield p
    p.close()


def request() -> CodingTask:
    return CodingTask(kind="summarization", prompt="def f(): pass", max_tokens=40, sla={"metric": "e2e", "seconds": 60})


def streamed_and_result(h: Handle) -> tuple[str, str]:
    return "".join(h.stream(timeout=90)), h.result(timeout=90).text


@pytest.mark.parametrize("fault", ["stall", "drop"])
def test_a_worker_cut_off_from_redis_recovers_and_loses_nothing(
    workers: WorkerFactory, proxy: Proxy, rds: redis.Redis, redis_url: str, fault: str
) -> None:
    cut_off = launch.start_worker(proxy.url, ["--pool", "default", "--device", "0", "-c", "4", "--time-scale", "4"])
    others: list[subprocess.Popen[bytes]] = []
    try:
        launch.wait_replicas(rds, "default", 1, procs=[cut_off])
        handles = [submit(request()) for _ in range(3)]
        for kind, _ in handles[0].events(timeout=30):
            if kind == "tok":
                break  # the cut-off worker runs them
        getattr(proxy, fault)()
        began = time.monotonic()
        others.append(workers("--device", "1", "-c", "4"))  # reaches Redis directly
        outcomes = [streamed_and_result(h) for h in handles]
        elsewhere = time.monotonic() - began
        proxy.restore()
        for streamed, text in outcomes:
            assert text and streamed == text  # every request done, no text shown twice
        assert elsewhere < 60
        redelivered = [h.result(timeout=5) for h in handles]
        # the nodes the cut-off worker held ran again on the other one
        assert all(r.redeliveries >= 1 and r.nodes[0].worker.startswith("default-sim-d1") for r in redelivered)

        # the cut-off worker comes back: alone again, it serves a new request
        launch.stop(others)
        again = submit(CodingTask(kind="summarization", prompt="def g(): pass", max_tokens=4))
        result = again.result(timeout=60)
        assert result.nodes[0].worker.startswith("default-sim-d0")
        assert cut_off.poll() is None, "the cut-off worker exited"
    finally:
        proxy.restore()
        launch.stop([cut_off])
