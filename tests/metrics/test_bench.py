"""``cato-mq bench metrics`` runs end to end, records what it says, and spares a Redis in use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import redis

from cato_mq.state import keys


def test_bench_metrics_records_the_requests_and_times_the_scrapes(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, "-m", "cato_mq.cli", "bench", "metrics", "--requests", "40",
                           "--scrapes", "3", "--json", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert figures["requests"] == 40 and figures["scrapes"] == 3
    assert 0 < figures["median_ms"] <= figures["p99_ms"]
    assert "median" in done.stdout


def test_bench_metrics_refuses_a_redis_with_data(rds: redis.Redis, redis_url: str) -> None:
    rds.hincrby(keys.counter("requests"), "default|completion|met", 1)
    done = subprocess.run([sys.executable, "-m", "cato_mq.cli", "bench", "metrics", "--redis-url", redis_url],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "give it an empty Redis" in done.stderr
    assert rds.hgetall(keys.counter("requests")) == {"default|completion|met": "1"}
