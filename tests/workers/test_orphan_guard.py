"""The orphan guard kills an engine's processes once their owner dies, and only those."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from workers import orphan_guard

psutil = pytest.importorskip("psutil")

# An "owner" that starts a long-lived "engine" child (in its own session, as vLLM's spawned
# core survives its parent), prints the child's pid, then waits to be killed.
_OWNER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
print(child.pid, flush=True)
time.sleep(120)
"""


def test_guard_kills_the_engine_when_its_owner_is_sigkilled() -> None:
    owner = subprocess.Popen([sys.executable, "-c", _OWNER], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    engine = psutil.Process(int(owner.stdout.readline()))
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    guard = orphan_guard.start(owner.pid, [engine])
    assert guard is not None
    try:
        owner.kill()
        owner.wait(10)
        assert guard.wait(10) == 0
        until = time.monotonic() + 10
        while engine.is_running() and engine.status() != psutil.STATUS_ZOMBIE and time.monotonic() < until:
            time.sleep(0.05)
        assert not engine.is_running() or engine.status() == psutil.STATUS_ZOMBIE
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
        if engine.is_running():
            engine.kill()


def test_a_recycled_pid_is_left_alone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        assert orphan_guard.kill_leftovers([f"{proc.pid}:1.0"]) == []  # not the process recorded
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_nothing_to_guard_starts_nothing() -> None:
    assert orphan_guard.start(1, []) is None
    orphan_guard.stop(None)
