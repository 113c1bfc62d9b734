"""The fleet a fault row runs on: its Redis and its sim-engine workers, which the row may
pause, kill or replace; it knows which exits the row caused."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from cato_mq.bench.faults.server import RedisServer
from cato_mq.fleet import launch
from cato_mq.state import keys, registry

#: Settings of every process of a row (the tests' short timeouts, one pool).
ENV = {"CATO_POOLS": "default", "CATO_VISIBILITY_TIMEOUT_S": "5", "CATO_HEARTBEAT_S": "0.2"}


@dataclass
class Fleet:
    server: RedisServer
    logs: Path
    concurrency: int
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    killed: set[int] = field(default_factory=set)  #: pids the row killed on purpose

    def start_worker(self, env: dict[str, str] | None = None, wait: bool = True) -> subprocess.Popen[bytes]:
        i = len(self.workers)
        proc = launch.start_worker(
            self.server.url, ["--pool", "default", "--device", str(i), "--concurrency", str(self.concurrency),
                              "-l", "WARNING"], {**ENV, **(env or {})}, self.logs / f"worker-{i}.log",
        )
        self.workers.append(proc)
        if wait:
            client = redis.Redis.from_url(self.server.url, decode_responses=True)
            launch.wait_replicas(client, "default", 1 + sum(p.poll() is None for p in self.workers[:-1]),
                                 procs=[proc])
        return proc

    def wait_busy(self, i: int, timeout_s: float) -> bool:
        """Wait until worker ``i`` has a node in flight (its registry entry says so)."""
        client = redis.Redis.from_url(self.server.url, decode_responses=True)
        until = time.monotonic() + timeout_s
        while time.monotonic() < until:
            with contextlib.suppress(redis.RedisError):
                for name, value in client.hgetall(keys.replicas("default")).items():
                    if name.startswith(f"default-sim-d{i}@") and registry.parse_entry(value).inflight:
                        return True
            time.sleep(0.01)
        return False

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        self.killed.add(proc.pid)
        proc.kill()
        proc.wait()

    def pause(self, proc: subprocess.Popen[bytes], seconds: float) -> None:
        proc.send_signal(signal.SIGSTOP)
        time.sleep(seconds)  # the fault itself: a worker frozen this long
        proc.send_signal(signal.SIGCONT)

    def exits(self) -> list[int]:
        """Exit codes of the workers that ended without the row killing them."""
        return [p.returncode for p in self.workers if p.poll() is not None and p.pid not in self.killed]

    def stop(self) -> None:
        launch.stop(self.workers)
        self.server.close()


def frozen(proc: subprocess.Popen[bytes]) -> bool:
    """Has the process stopped itself (state T in /proc)?"""
    try:
        stat = Path(f"/proc/{proc.pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "T"


def wait_frozen(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        if frozen(proc):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
