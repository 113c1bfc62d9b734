"""The gateway as a user runs it: ``cato-mq gateway`` in its own process, on a free port, with
API keys; real worker processes behind it (the ``workers`` fixture)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from cato_mq import app as cato_app
from cato_mq.fleet import launch

KEY = "sk-test-key-1"


@dataclass
class Gateway:
    url: str
    key: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"{self.url}/v1"

    def client(self, **kw: object) -> object:
        import openai

        return openai.OpenAI(base_url=self.base, api_key=self.key, max_retries=0, timeout=60, **kw)  # type: ignore[arg-type]


def start_gateway(redis_url: str, tmp: Path, env: dict[str, str] | None = None) -> Gateway:
    keys = tmp / "api_keys"
    keys.write_text(f"# test keys\n{KEY}\nsk-other\n")
    port = launch.free_port()
    log = tmp / "gateway.log"
    proc = launch.start_cli(redis_url, ["gateway", "--host", "127.0.0.1", "--port", str(port)],
                            env={"CATO_API_KEYS_FILE": str(keys), **(env or {})}, log=log)
    url = f"http://127.0.0.1:{port}"
    until = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/health", timeout=1)
            return Gateway(url, KEY, proc, log)
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > until:
                raise RuntimeError(f"gateway did not start: {log.read_text()[-3000:]}") from None
            time.sleep(0.1)


@pytest.fixture(scope="module")
def gateway(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = start_gateway(redis_url, tmp_path_factory.mktemp("gateway"))
    yield gw
    launch.stop([gw.proc])


@pytest.fixture(scope="module")
def fleet(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    """One simulated-engine worker of pool ``default`` for the whole module (pool ``other``
    has none). Redis is emptied once, before it starts; tests never flush it."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    cato_app.reset()
    proc = launch.start_worker(redis_url, ["--pool", "default", "-c", "8"],
                               log=tmp_path_factory.mktemp("fleet") / "worker.log")
    try:
        launch.wait_replicas(client, "default", 1, procs=[proc])
        yield client
    finally:
        launch.stop([proc])
        client.close()
