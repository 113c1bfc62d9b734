"""A process tree started in order and stopped in the reverse order: what ``cato-mq up`` runs.

Each service is a child in a session of its own, so the terminal's Ctrl-C reaches only the
supervisor, which then stops the services one by one: the gateway stops accepting before
the workers drain, and Redis goes last, flushing its append-only file. Each child also
gets SIGTERM from the kernel if the supervisor itself is killed, so nothing outlives it.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cato_mq.fleet.launch import die_with_parent

#: How often a waiting supervisor looks at its children and readiness probes.
POLL_S = 0.1


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    argv: list[str]
    #: polled until it returns True; None means ready once started
    ready: Callable[[], bool] | None = None
    ready_timeout_s: float = 60.0
    #: SIGTERM, then SIGKILL after this long (workers drain in-flight nodes meanwhile)
    stop_timeout_s: float = 20.0
    #: False for Redis: even a hurried stop lets it flush its append-only file
    kill_in_hurry: bool = True
    env: Mapping[str, str] = field(default_factory=dict)


class ServiceFailed(RuntimeError):
    def __init__(self, service: str, message: str, log_tail: str) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.log_tail = log_tail


@dataclass
class Running:
    service: Service
    proc: subprocess.Popen[bytes]
    log: Path


class Stack:
    def __init__(self, log_dir: Path, env: Mapping[str, str], say: Callable[[str], None]) -> None:
        self.log_dir = log_dir
        self.env = dict(env)
        self.say = say
        self.running: list[Running] = []
        #: set by a second Ctrl-C: stop without waiting for drains
        self.hurry = threading.Event()

    def start(self, service: Service, stop: threading.Event) -> None:
        """Start ``service`` and wait until it is ready; raise ServiceFailed if it exits or
        does not get ready in time, or return early if ``stop`` is set meanwhile."""
        log = self.log_dir / f"{service.name}.log"
        began = time.monotonic()
        self.say(f"starting {service.name} ...")
        with open(log, "ab") as out:
            proc = subprocess.Popen(service.argv, env={**os.environ, **self.env, **service.env}, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=die_with_parent())
        self.running.append(Running(service, proc, log))
        until = began + service.ready_timeout_s
        while not stop.is_set():
            if proc.poll() is not None:
                raise ServiceFailed(service.name, f"exited with code {proc.returncode} while starting", tail(log))
            if service.ready is None or service.ready():
                self.say(f"  {service.name} ready in {time.monotonic() - began:.1f} s (pid {proc.pid})")
                return
            if time.monotonic() > until:
                raise ServiceFailed(service.name, f"not ready after {service.ready_timeout_s:g} s", tail(log))
            stop.wait(POLL_S)

    def watch(self, stop: threading.Event) -> None:
        """Return when ``stop`` is set; raise ServiceFailed when a service exits on its own."""
        while not stop.wait(POLL_S * 5):
            for r in self.running:
                if r.proc.poll() is not None:
                    raise ServiceFailed(r.service.name, f"exited with code {r.proc.returncode}", tail(r.log))

    def stop_all(self) -> None:
        """Newest first: each gets SIGTERM and its own time to finish before the next."""
        for r in reversed(self.running):
            if r.proc.poll() is None:
                self.say(f"stopping {r.service.name} ...")
                r.proc.terminate()
                deadline = time.monotonic() + r.service.stop_timeout_s
                while r.proc.poll() is None and time.monotonic() < deadline:
                    if self.hurry.is_set() and r.service.kill_in_hurry:
                        break
                    time.sleep(POLL_S)
                if r.proc.poll() is None:
                    self.say(f"  {r.service.name} did not stop in time: killed")
                    r.proc.kill()
            r.proc.wait()
        self.running.clear()

    def pids(self) -> dict[str, int]:
        return {r.service.name: r.proc.pid for r in self.running}


def tail(log: Path, chars: int = 2000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""
