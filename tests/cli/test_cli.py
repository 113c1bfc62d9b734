"""The command line as users run it: a real process, exit codes, messages."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from cato_mq.fleet import launch
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
    port = launch.free_port()  # nothing listens there
    out = subprocess.run([sys.executable, "-m", "cato_mq.cli", "submit", "--kind", "completion", "--prompt", "x"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "CATO_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    assert out.returncode == 1  # after the publish's retries (a Redis restart is ridden out)
    assert "Connection refused" in out.stderr and "Traceback" not in out.stderr and out.stderr.count("\n") == 1


def test_bench_names_every_benchmark() -> None:
    for name in ("vllm", "scaling", "goodput"):
        out = cli("bench", name, "--help")
        assert out.returncode == 0 and f"usage: cato-mq bench-{name}" in out.stdout
    assert cli("bench", "nonsense").returncode == 2


def test_version_is_the_installed_one() -> None:
    from importlib import metadata

    out = cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"cato-mq {metadata.version('cato-mq')}"


def test_validation_errors_are_one_line_per_field_without_links(rds: redis.Redis) -> None:
    out = cli("submit", "--kind", "refactor", "--prompt", "", "--sla", "ttft:-1")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["kind", "prompt", "sla.seconds"]
    assert all(line.startswith("cato-mq submit: ") for line in lines)
    assert "http" not in out.stderr and rds.dbsize() == 0


def test_bad_environment_names_the_variable() -> None:
    out = subprocess.run([sys.executable, "-m", "cato_mq.cli", "fleet"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "CATO_HEARTBEAT_S": "soon"})
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "cato-mq fleet: bad CATO_* environment: CATO_HEARTBEAT_S: Input should be a valid number, "
        "unable to parse string as a number"]


def test_a_closed_pipe_ends_quietly() -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written: every write gets EPIPE
    try:
        out = subprocess.run([sys.executable, "-m", "cato_mq.cli", "simulate", "--system", "fifo", "--rate", "5",
                              "--duration", "5"], stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert out.returncode == 141
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr


def test_require_replica_refuses_and_submits_nothing_while_the_default_warns(rds: redis.Redis) -> None:
    out = cli("submit", "--kind", "completion", "--prompt", "x", "--require-replica")
    assert out.returncode == 1
    assert "no live replica of pool 'default'" in out.stderr and "Traceback" not in out.stderr
    assert rds.dbsize() == 0
    out = cli("submit", "--kind", "completion", "--prompt", "x", "--timeout", "0.5")
    assert out.returncode == 1  # nobody served it within the timeout
    assert "warning: no live replica of pool 'default'" in out.stderr
    assert rds.dbsize() > 0  # submitted all the same: it waits for a replica


def test_result_of_an_unknown_request_exits_2_at_once_and_a_queued_one_waits(rds: redis.Redis) -> None:
    for request_id in ("0" * 32, "not-an-id"):
        out = cli("result", request_id, "--timeout", "30", timeout=20)  # 20 s < 30: it must not wait
        assert out.returncode == 2, out.stderr
        assert "unknown request" in out.stderr and "Traceback" not in out.stderr
    # a queued request (no replica) is known from its publish: result waits for it instead
    from cato_mq.state import keys

    cli("submit", "--kind", "completion", "--prompt", "x", "--timeout", "0.2", "--json")
    marked = [k.removeprefix(keys.request("")) for k in rds.scan_iter(keys.request("*"))]
    assert len(marked) == 1
    out = cli("result", marked[0], "--timeout", "0.5")
    assert out.returncode == 1 and "not finished" in out.stderr


def test_json_output_is_the_result_alone(workers: WorkerFactory) -> None:
    import json

    workers()
    out = cli("submit", "--kind", "summarization", "--prompt", "def f(): return 1", "--max-tokens", "8", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["kind"] == "summarization"


def test_demo_serves_every_kind_and_leaves_nothing_behind(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "cato_mq.cli", "demo"], capture_output=True, text=True,
                         timeout=240, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-3000:]
    for kind in ("completion", "generation", "summarization", "translation"):
        assert f"| {kind} |" in out.stdout
    assert list(tmp_path.iterdir()) == []  # no log folder, no Redis directory


def test_sigterm_stops_a_benchmark_and_the_processes_it_started() -> None:
    import psutil

    bench = subprocess.Popen([sys.executable, "-m", "cato_mq.cli", "bench", "overhead", "--hops", "10000000"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        me = psutil.Process(bench.pid)
        # its Redis and both workers (bare Celery's and cato-mq's) are up once a worker of
        # each kind is among its children; the benchmark is in its `try` by then
        deadline = time.monotonic() + 60
        while True:
            children = me.children(recursive=True)
            lines = [" ".join(c.cmdline()) for c in children if c.is_running()]
            if any("bare_celery" in x for x in lines) and any("cato_mq.cli worker" in x for x in lines):
                break
            assert bench.poll() is None and time.monotonic() < deadline, lines
            time.sleep(0.05)
        bench.terminate()
        assert bench.wait(60) == 143
        _, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [], [" ".join(p.cmdline()) for p in alive]
    finally:
        if bench.poll() is None:
            bench.kill()
