"""The data directory of ``cato-mq up``: what one fleet keeps between runs.

Everything a restart must find again lives here: Redis's append-only file (the queued
requests), the Redis password and port (so the URL printed once stays valid), the
gateway's API key (so an editor configured with it stays configured), Flower's
task history, the generated tiny model, and each service's log. The default follows the
XDG base directories, so nothing lands in the working directory.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cato_mq.fleet.launch import free_port


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cato-mq"


@dataclass(frozen=True, slots=True)
class Home:
    root: Path

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def flower_db(self) -> Path:
        return self.root / "flower.db"

    @property
    def tiny_model(self) -> Path:
        return self.root / "models" / "tiny"

    @property
    def pools_file(self) -> Path:
        return self.root / "pools.json"

    def prepare(self) -> Home:
        for folder in (self.root, self.redis_dir, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)  # the Redis password and the queued prompts are in here
        return self

    def redis_password(self) -> str:
        """Made once and kept: Redis is only on 127.0.0.1, but other local users must not
        reach the queues (one stray LPUSH used to be able to stop a fleet)."""
        return self._remembered("redis.password", lambda: secrets.token_urlsafe(18))

    def api_key(self) -> str:
        """The gateway's key, made once and kept, so an editor configured with it stays
        configured; ``api_keys`` holds it in the file format the gateway reads."""
        kept = self._remembered("api_keys", lambda: f"sk-cato-{secrets.token_urlsafe(24)}")
        return next(k.strip() for k in kept.splitlines() if k.strip() and not k.startswith("#"))

    @property
    def api_keys_file(self) -> Path:
        return self.root / "api_keys"

    def redis_port(self, wanted: int | None) -> int:
        """``wanted``, else the port of the last run, else a free one, remembered."""
        if wanted:
            (self.root / "redis.port").write_text(str(wanted))
            return wanted
        return int(self._remembered("redis.port", lambda: str(free_port())))

    def _remembered(self, name: str, make: Callable[[], str]) -> str:
        path = self.root / name
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        value = make()
        path.touch(mode=0o600)
        path.write_text(value)
        return value
