"""``cato-mq metrics`` as a process: says where it serves, serves, and stops on SIGTERM."""

from __future__ import annotations

import os
import subprocess
import sys

import redis

from tests.metrics.conftest import scrape
from tests.metrics.test_prometheus import free_port, poll


def test_metrics_serves_until_sigterm_then_exits_0(rds: redis.Redis) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cato_mq.cli", "metrics", "--port", str(port)],
                            env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        samples = poll(lambda: scrape(f"http://127.0.0.1:{port}/metrics"))
        assert any(s.name == "cato:requests_total" for s in samples)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert out.strip() == f"serving Prometheus metrics on http://127.0.0.1:{port}/metrics"


def test_metrics_with_redis_out_of_reach_exits_1_with_one_line() -> None:
    env = {**os.environ, "CATO_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    done = subprocess.run([sys.executable, "-m", "cato_mq.cli", "metrics", "--port", "0"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("cato-mq metrics: ConnectionError:") and done.stderr.count("\n") == 1
