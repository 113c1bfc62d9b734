"""The per-host agent: owns the host's devices and carries out the provisioner's orders.

Every ``lease_s / 3`` it rewrites its record (``keys.agent``, TTL = lease) and renews the
leases of its devices; in between it blocks on its order list. ``spawn`` starts a worker
process pinned to the leased device; ``retire`` sends the worker ``cato_drain`` (cancel
its consumers), waits for the registry to show nothing in flight, then sends ``shutdown``;
a lease is released only when the process has exited. Workers die with the agent
(``PR_SET_PDEATHSIG``): a device whose lease expired is never still in use.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import redis
from celery import Celery

from cato_mq.fleet.launch import die_with_parent
from cato_mq.fleet.records import RELEASE_LUA, Redis, ReplicaRecord, log_state, parse_lease, record_value
from cato_mq.state import keys
from cato_mq.state.registry import parse_entry

log = logging.getLogger("cato_mq.agent")

#: A draining worker gets this long beyond the node timeout to finish, then SIGTERM/SIGKILL.
DRAIN_GRACE_S = 10.0
#: Backoff while Redis is out of reach: first wait, longest wait.
RECONNECT_FIRST_S = 0.1
RECONNECT_MAX_S = 2.0
#: Rewrite the record only if we still own it: a second agent for the same host is refused.
_BEAT_LUA = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class AgentConflict(ValueError):
    """Another live agent already owns this host."""


@dataclass
class Managed:
    record: ReplicaRecord
    proc: subprocess.Popen[bytes]
    lease: str
    spawned: float
    shutdown_at: float | None = None


class Agent:
    def __init__(
        self, client: Redis, app: Celery, host: str, devices: list[str], engine: str,
        worker_cmd: Callable[[str, str], list[str]], lease_s: float, order_ttl_s: float,
        drain_timeout_s: float, log_dir: Path | None = None,
    ) -> None:
        self.client, self.app, self.host, self.devices, self.engine = client, app, host, devices, engine
        self.worker_cmd = worker_cmd
        self.lease_ms = int(lease_s * 1000)
        self.period = lease_s / 3
        self.order_ttl_s = order_ttl_s
        self.drain_timeout_s = drain_timeout_s
        self.log_dir = log_dir
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.managed: dict[str, Managed] = {}  # device -> replica process
        self.stop = threading.Event()
        self._release = client.register_script(RELEASE_LUA)
        self._beat_script = client.register_script(_BEAT_LUA)

    # --- registration and leases -------------------------------------------------------

    def beat(self) -> None:
        fields = {"devices": ",".join(self.devices), "engine": self.engine, "beat": f"{time.time():.3f}",
                  "pid": str(os.getpid())}
        fields |= {f"dev:{d}": record_value(m.record) for d, m in self.managed.items()}
        flat = [x for kv in fields.items() for x in kv]
        if not self._beat_script(keys=[keys.agent(self.host)], args=[self.token, self.lease_ms, *flat]):
            raise AgentConflict(f"another agent is running for host {self.host!r}")
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(keys.agents(), {self.host: time.time()})
        pipe.expire(keys.agents(), 86_400)
        for device in self.devices:
            pipe.get(keys.lease(self.host, device))
        leases = pipe.execute()[2:]
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        for device, value in zip(self.devices, leases, strict=True):
            if value is None:
                continue
            pool, name, at = parse_lease(value)
            mine = device in self.managed and self.managed[device].record.name == name
            if mine or now - at < self.order_ttl_s:  # serving, or its spawn order is on its way
                pipe.pexpire(keys.lease(self.host, device), self.lease_ms)
            else:  # requested long ago and never spawned: the order was lost or dropped
                self._release(keys=[keys.lease(self.host, device)], args=[value], client=pipe)
                log_state(pipe, ReplicaRecord(name, pool, self.host, device, "gone", now))
        pipe.execute()

    # --- orders ------------------------------------------------------------------------

    def take_order(self, timeout_s: float) -> None:
        reply = self.client.blpop([keys.orders(self.host)], timeout=max(0.01, timeout_s))
        if reply is None:
            return
        order = json.loads(reply[1])
        if time.time() - order["at"] > self.order_ttl_s:
            log.warning("dropping stale order %s", order)
            return
        if order["op"] == "spawn":
            self.spawn(order["device"], order["pool"], order["name"])
        elif order["op"] == "retire":
            self.retire(order["name"])

    def spawn(self, device: str, pool: str, name: str) -> None:
        lease = self.client.get(keys.lease(self.host, device))
        if device in self.managed or lease is None or parse_lease(lease)[1] != name:
            log.warning("spawn %s on device %s refused: device busy or lease lost", name, device)
            return
        out = open(self.log_dir / f"{name}.log", "ab") if self.log_dir else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(
            self.worker_cmd(pool, device), env={**os.environ, "CATO_HOST": self.host},
            stdout=out, stderr=out, preexec_fn=die_with_parent(signal.SIGKILL), start_new_session=True,
        )
        now = time.time()
        record = ReplicaRecord(name, pool, self.host, device, "starting", now)
        self.managed[device] = Managed(record, proc, lease, now)
        self._log(self.managed[device])

    def retire(self, name: str) -> None:
        m = next((m for m in self.managed.values() if m.record.name == name), None)
        if m is None or m.record.state not in ("starting", "ready"):
            return
        if m.record.state == "starting":  # not consuming yet: nothing in flight to wait for
            m.proc.terminate()
        else:
            self.app.control.broadcast("cato_drain", destination=[name], reply=True, timeout=2.0)
        m.record = replace(m.record, state="draining", since=time.time())
        self._log(m)

    # --- watching the workers ----------------------------------------------------------

    def poll(self) -> None:
        now = time.time()
        for device, m in list(self.managed.items()):
            r = m.record
            if m.proc.poll() is not None:  # timeline first: whoever sees the device free sees "gone"
                m.record = replace(r, state="gone", since=now)
                self._log(m)
                self._release(keys=[keys.lease(self.host, device)], args=[m.lease])
                del self.managed[device]
                continue
            entry = self.client.hget(keys.replicas(r.pool), r.name)
            if r.state == "starting" and entry is not None:
                m.record = replace(r, state="ready", since=now)
                self.client.hset(keys.load_times(), r.pool, f"{now - m.spawned:.3f}")
                self.client.expire(keys.load_times(), 86_400)
                self._log(m)
            elif r.state == "draining":
                self._finish_drain(m, entry, now)

    def _finish_drain(self, m: Managed, entry: str | None, now: float) -> None:
        """Shut down once nothing is in flight (or the drain overran); force it if ignored."""
        if m.shutdown_at is None:
            seen = None if entry is None else parse_entry(entry)
            idle = seen is None or (seen.state == "draining" and seen.inflight == 0)
            if idle or now - m.record.since > self.drain_timeout_s:
                self.app.control.broadcast("shutdown", destination=[m.record.name])
                m.shutdown_at = now
        elif now - m.shutdown_at > 2 * DRAIN_GRACE_S:
            m.proc.kill()
        elif now - m.shutdown_at > DRAIN_GRACE_S:
            m.proc.terminate()

    def _log(self, m: Managed) -> None:
        pipe = self.client.pipeline(transaction=False)
        log_state(pipe, m.record)
        pipe.execute()
        log.info("%s %s on device %s", m.record.name, m.record.state, m.record.device)

    # --- main loop -----------------------------------------------------------------------

    def run(self) -> None:
        self.beat()
        log.info("agent for host %s serving devices %s", self.host, ",".join(self.devices))
        next_beat = time.monotonic() + self.period
        backoff = RECONNECT_FIRST_S
        while not self.stop.is_set():
            try:
                self.poll()
                wait = min(next_beat - time.monotonic(), 0.2)  # poll workers at least 5x a second
                self.take_order(wait)
                if time.monotonic() >= next_beat:
                    self.beat()
                    next_beat = time.monotonic() + self.period
                backoff = RECONNECT_FIRST_S
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
                # Redis restarting: our workers keep serving; we retry with backoff
                log.warning("Redis out of reach (%s); retrying in %.1f s", exc, backoff)
                self.stop.wait(backoff)
                backoff = min(2 * backoff, RECONNECT_MAX_S)
        self.shutdown()

    def shutdown(self) -> None:
        """Stop every worker (warm: in-flight nodes finish), release, deregister."""
        for m in self.managed.values():
            m.proc.terminate()
        until = time.monotonic() + self.drain_timeout_s
        while self.managed and time.monotonic() < until:
            self.poll()
            time.sleep(0.05)
        for m in self.managed.values():
            m.proc.kill()
            m.proc.wait()
        self.poll()
        self.client.delete(keys.agent(self.host))
        self.client.zrem(keys.agents(), self.host)


def worker_command(
    engine: str, platform: str, concurrency: int, time_scale: float, profiles: dict[str, str],
) -> Callable[[str, str], list[str]]:
    def cmd(pool: str, device: str) -> list[str]:
        args = [sys.executable, "-m", "cato_mq.cli", "worker", "--pool", pool, "--device", device,
                "--engine", engine, "--platform", platform, "--concurrency", str(concurrency),
                "--time-scale", str(time_scale)]
        profile = profiles.get(pool, profiles.get("*"))
        return args + (["--profile", profile] if profile else [])

    return cmd
