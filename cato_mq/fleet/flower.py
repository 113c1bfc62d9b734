"""Flower, Celery's web monitor, as cato-mq runs it: behind a login, state kept on disk.

Flower's REST API answers 401 unless a login is configured (or ``FLOWER_UNAUTHENTICATED_API``
is set, which nothing here sets): with ``--basic_auth`` the pages and the API both ask for
it, while ``/healthcheck`` and ``/metrics`` stay open for probes and Prometheus. ``--persistent``
with ``--db`` keeps its task history across restarts. ``cato-mq up`` and compose start it
so; its ``enable_events`` broadcast switches the workers' task events on while it watches.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

#: Flower imports Celery, tornado and the app: a few seconds on a busy small machine.
START_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Login:
    user: str
    password: str

    @classmethod
    def generate(cls, user: str = "cato") -> Login:
        """A fresh password, printed once by whoever starts Flower with it."""
        return cls(user, secrets.token_urlsafe(12))

    @classmethod
    def parse(cls, text: str) -> Login:
        """``user:password`` (the password may contain ``:``)."""
        user, sep, password = text.partition(":")
        if not sep or not user or not password:
            raise ValueError("a Flower login is USER:PASSWORD, both non-empty")
        return cls(user, password)

    def __str__(self) -> str:
        return f"{self.user}:{self.password}"


def command(port: int, login: Login, db: Path | None = None, address: str = "127.0.0.1") -> list[str]:
    """``celery flower`` on cato-mq's app, as ``cato-mq up`` and compose run it."""
    args = [sys.executable, "-m", "celery", "-A", "cato_mq.app", "flower", f"--port={port}",
            f"--address={address}", f"--basic_auth={login}"]
    if db is not None:
        args += ["--persistent=True", f"--db={db}"]
    return args


def start(redis_url: str, port: int, login: Login, db: Path | None = None, log: Path | None = None,
          address: str = "127.0.0.1") -> subprocess.Popen[bytes]:
    env = {**os.environ, "CATO_REDIS_URL": redis_url}
    env.pop("FLOWER_UNAUTHENTICATED_API", None)  # the login guards the API too
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - lives with the child
    return subprocess.Popen(command(port, login, db, address), env=env, stdout=out, stderr=out)


def wait_ready(base_url: str, proc: subprocess.Popen[bytes], timeout_s: float = START_TIMEOUT_S) -> None:
    """Block until Flower answers its (unauthenticated) health check."""
    until = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/healthcheck", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (URLError, ConnectionError):
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"flower exited with code {proc.returncode} during start-up")
        if time.monotonic() > until:
            raise TimeoutError(f"flower did not answer {base_url}/healthcheck within {timeout_s} s")
        time.sleep(0.1)
