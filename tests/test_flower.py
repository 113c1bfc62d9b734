"""Flower, the web monitor, watching a real worker: it enables events and sees our tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from urllib.error import HTTPError, URLError

import pytest

from cato_mq import CodingTask, local, submit
from tests.conftest import WorkerFactory

pytest.importorskip("flower")


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture
def flower(redis_url: str) -> Iterator[str]:
    port = local.free_port()
    env = {**os.environ, "FLOWER_UNAUTHENTICATED_API": "true"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "cato_mq.app", "flower", f"--port={port}", "--address=127.0.0.1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    until = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthcheck", timeout=2) as resp:
                if resp.status == 200:
                    break
        except (URLError, ConnectionError):
            pass
        assert proc.poll() is None, "flower exited"
        assert time.monotonic() < until, "flower did not answer /healthcheck"
        time.sleep(0.1)
    yield base
    local.stop([proc])


def test_flower_sees_workers_and_node_tasks(workers: WorkerFactory, flower: str) -> None:
    workers()  # started without --events: Flower's enable_events broadcast turns them on
    until = time.monotonic() + 30
    while True:  # flower asks the workers (inspect) and lists those that answered
        listed = get(f"{flower}/api/workers?refresh=1")
        assert isinstance(listed, dict)
        if any(name.startswith("default-sim-d0@") for name in listed):
            break
        assert time.monotonic() < until, f"flower never listed the worker: {listed}"
        time.sleep(0.1)

    seen: dict[str, object] = {}
    until = time.monotonic() + 45
    while not seen:  # Flower's enable_events broadcast reaches the worker within seconds
        assert time.monotonic() < until, "flower never showed a cato.node task"
        rid = submit(CodingTask(kind="summarization", prompt="def f(): pass", max_tokens=4)).result(10).request_id
        tasks = get(f"{flower}/api/tasks")
        assert isinstance(tasks, dict)
        seen = {tid: t for tid, t in tasks.items() if tid.startswith(rid)}

    # events flow now, so a request sent from here on is seen from received to succeeded
    rid = submit(CodingTask(kind="summarization", prompt="def g(): pass", max_tokens=4)).result(10).request_id
    task: dict[str, object] = {}
    while task.get("state") != "SUCCESS":  # events arrive asynchronously
        assert time.monotonic() < until, f"flower never saw {rid} succeed: {task}"
        time.sleep(0.05)
        try:
            info = get(f"{flower}/api/task/info/{rid}-0-llm")
        except HTTPError:  # 404 until its first event arrives
            continue
        assert isinstance(info, dict)
        task = info
    assert task["name"] == "cato.node"
    assert str(task["worker"]).startswith("default-sim-d0@")
    metrics = urllib.request.urlopen(f"{flower}/metrics", timeout=5).read().decode()
    assert 'flower_events_total{task="cato.node"' in metrics
