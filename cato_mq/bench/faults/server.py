"""A private ``redis-server`` that a fault row can restart, with or without its data, and
whose memory is sampled for the row's peak."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time

import redis

from cato_mq.fleet import launch

#: How often the memory sampler reads ``INFO memory``.
SAMPLE_S = 0.1


class RedisServer:
    """``aof``: ``appendonly yes`` with ``appendfsync everysec``; else no persistence at all
    (compose's setting). ``maxmemory``: e.g. ``"12mb"``, with ``noeviction``."""

    def __init__(self, aof: bool = False, maxmemory: str | None = None, binary: str | None = None) -> None:
        self.binary = binary or launch.redis_server_binary()
        self.port = launch.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.aof = aof
        self.maxmemory = maxmemory
        self._dir = tempfile.mkdtemp(prefix="cato-faults-redis-")
        self._proc: subprocess.Popen[bytes] | None = None
        self.peak_bytes = 0
        self._sampling = threading.Event()
        self._sampler: threading.Thread | None = None

    def _args(self) -> list[str]:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self._dir,
                "--save", "", "--maxmemory-policy", "noeviction"]
        args += ["--appendonly", "yes", "--appendfsync", "everysec"] if self.aof else ["--appendonly", "no"]
        return args + (["--maxmemory", self.maxmemory] if self.maxmemory else [])

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        self._proc = subprocess.Popen(self._args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        until = time.monotonic() + timeout_s
        while True:
            try:
                client.ping()
                break
            except (redis.ConnectionError, redis.BusyLoadingError):
                if self._proc.poll() is not None or time.monotonic() > until:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)
        if self._sampler is None:
            self._sampling.set()
            self._sampler = threading.Thread(target=self._sample, name="redis-memory", daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        client = redis.Redis(port=self.port, socket_timeout=1.0)
        while self._sampling.is_set():
            try:
                memory = client.info("memory")
                self.peak_bytes = max(self.peak_bytes, int(memory["used_memory"]), int(memory["used_memory_peak"]))
            except redis.RedisError:
                pass  # restarting
            time.sleep(SAMPLE_S)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): with AOF on, Redis writes everything out first."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(30)

    def restart(self, down_s: float) -> None:
        """Stop, stay down ``down_s`` seconds, start again on the same port and directory."""
        self.stop()
        time.sleep(down_s)  # the outage itself: what the fleet must ride out
        self.start()

    def version(self) -> str:
        return str(redis.Redis(port=self.port).info("server")["redis_version"])

    def close(self) -> None:
        self._sampling.clear()
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
