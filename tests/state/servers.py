"""Private redis-server processes with the arguments a test needs (a password, TLS, a
replica), started on free ports and stopped by the test."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

#: Points this process (client, router, Celery app) at a URL: the ``point`` fixture.
Point = Callable[[str], None]


def start_redis(binary: str, args: list[str], tmp: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([binary, *args, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_up(client: redis.Redis, proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    until = time.monotonic() + timeout_s
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > until:
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(10)
