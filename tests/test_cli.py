"""The command line as users run it: a real process, exit codes, messages."""

from __future__ import annotations

import os
import subprocess
import sys

import redis

from cato_mq import local
from tests.conftest import WorkerFactory


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cato_mq.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_help_lists_the_commands() -> None:
    out = cli("--help")
    assert out.returncode == 0
    for command in ("worker", "submit", "result", "bench", "demo"):
        assert command in out.stdout


def test_submit_with_bad_input_exits_2_and_enqueues_nothing(rds: redis.Redis) -> None:
    for args, message in [
        (["--kind", "refactor", "--prompt", "x"], "kind"),
        (["--kind", "completion", "--prompt", "x", "--sla", "ttft:-1"], "greater than 0"),
        (["--kind", "completion", "--prompt", "x", "--pool", "nope"], "unknown pool 'nope'"),
        (["--kind", "completion", "--prompt-file", "/no/such/file"], "No such file"),
    ]:
        out = cli("submit", *args)
        assert out.returncode == 2, out.stderr
        assert message in out.stderr
    assert rds.dbsize() == 0


def test_submit_streams_and_reports(workers: WorkerFactory) -> None:
    workers()
    out = cli("submit", "--kind", "summarization", "--prompt", "def f(): return 1", "--max-tokens", "12")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    assert "met=" in out.stderr and "tiers ['safe']" in out.stderr


def test_unreachable_redis_is_a_one_line_error() -> None:
    port = local.free_port()  # nothing listens there
    out = subprocess.run([sys.executable, "-m", "cato_mq.cli", "submit", "--kind", "completion", "--prompt", "x"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "CATO_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    assert out.returncode == 1
    assert "ConnectionError" in out.stderr and "Traceback" not in out.stderr


def test_bench_names_every_benchmark() -> None:
    for name in ("vllm", "scaling", "goodput"):
        out = cli("bench", name, "--help")
        assert out.returncode == 0 and f"usage: cato-mq bench-{name}" in out.stdout
    assert cli("bench", "nonsense").returncode == 2
