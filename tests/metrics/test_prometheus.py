"""A real Prometheus (Debian's) scrapes ``cato-mq metrics`` running as a process: a PromQL
query returns the goodput the requests had, and every dashboard panel's query gets data."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from beat import tick
from cato_mq import CodingTask, Kind, submit
from cato_mq.client import RequestFailed
from cato_mq.policy.provisioner_config import load
from cato_mq.settings import get_settings
from tests.conftest import WorkerFactory
from tests.metrics.test_dashboard import panel_queries
from tests.metrics.test_exporter import task

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="Debian's prometheus package is not installed")
GOODPUT = ('sum by (kind) (cato:requests_total{outcome="met"})'
           ' / sum by (kind) (cato:requests_total{outcome=~"met|missed|failed"})')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(fetch: Callable[[], Any], timeout: float = 60) -> Any:
    """``fetch()``'s first truthy answer; connection errors count as not yet."""
    until = time.monotonic() + timeout
    while True:
        try:
            answer = fetch()
        except OSError:
            answer = None
        if answer:
            return answer
        if time.monotonic() > until:
            raise AssertionError(f"no answer within {timeout} s")
        time.sleep(0.2)


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return bytes(reply.read())


@pytest.fixture
def stack(redis_url: str, tmp_path: Path) -> Iterator[str]:
    """``cato-mq metrics`` and a Prometheus scraping it every second; yields Prometheus' URL."""
    exporter_port, prom_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "cato-mq", "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}],
    }))
    procs = [
        subprocess.Popen([sys.executable, "-m", "cato_mq.cli", "metrics", "--port", str(exporter_port)],
                         env=dict(os.environ), stdout=(tmp_path / "metrics.log").open("wb"), stderr=subprocess.STDOUT),
        subprocess.Popen([str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{prom_port}"],
                         stdout=(tmp_path / "prometheus.log").open("wb"), stderr=subprocess.STDOUT),
    ]
    try:
        poll(lambda: get(f"http://127.0.0.1:{exporter_port}/metrics"))
        poll(lambda: get(f"http://127.0.0.1:{prom_port}/-/ready"))
        yield f"http://127.0.0.1:{prom_port}"
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    answer = json.loads(get(url))
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def test_promql_returns_the_goodput_the_requests_had(
    workers: WorkerFactory, rds: redis.Redis, stack: str,
) -> None:
    workers("-c", "4")
    # per kind: three with room to meet their SLA, one that cannot meet 1 ms; one failure
    handles = [submit(task(k, s)) for k in Kind for s in (60, 60, 60, 0.001)]
    failing = submit(CodingTask(kind="summarization", prompt="x" * 60_000, max_tokens=8))
    results = [h.result(timeout=60) for h in handles]
    with pytest.raises(RequestFailed):
        failing.result(timeout=60)
    settings = get_settings()
    tick.run_tick(rds, settings, load(settings.pools), time.time())  # the provisioner's desired replicas

    expected = {}
    for kind in Kind:
        mine = [r for r in results if r.kind == kind]
        failed = 1 if kind is Kind.summarization else 0
        expected[kind.value] = sum(r.met_sla for r in mine) / (len(mine) + failed)
    assert 0 < min(expected.values()) < 1

    def goodput() -> dict[str, float] | None:
        rows = query(stack, GOODPUT)
        seen = {r["metric"]["kind"]: float(r["value"][1]) for r in rows}
        return seen if seen == pytest.approx(expected) else None

    assert poll(goodput) == pytest.approx(expected)
    # every dashboard query evaluates to data on the real server (rates need two scrapes)
    for expr in panel_queries():
        assert poll(lambda e=expr: query(stack, e)), expr  # type: ignore[misc]
