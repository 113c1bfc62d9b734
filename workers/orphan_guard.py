"""A watcher that kills an engine's processes when the process owning them dies.

vLLM's engine core and model workers do not notice their parent's death: after a
SIGKILL of a worker (OOM killer, ``kill -9``, a crashed host agent) they live on and
keep the device's memory, so the next replica on that device cannot start. The owner
cannot clean up after a SIGKILL, so a separate process (own session: a signal to the
worker's process group does not reach it) waits for the owner's exit and then kills
whichever of the recorded processes still run. ``VllmEngine.shutdown`` stops it.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

#: Poll period where pidfd_open is unavailable (non-Linux): at most this much orphan time.
POLL_S = 0.5


def start(owner_pid: int, procs: Sequence[Any]) -> subprocess.Popen[bytes] | None:
    """Watch ``owner_pid``; on its exit kill ``procs`` (psutil processes). None if nothing to watch."""
    # the creation time tells a recycled pid from the engine's process
    targets = [f"{p.pid}:{p.create_time()!r}" for p in procs]
    if not targets:
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "workers.orphan_guard", str(owner_pid), *targets],
        start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def stop(guard: subprocess.Popen[bytes] | None) -> None:
    if guard is not None and guard.poll() is None:
        guard.terminate()
        guard.wait(5)


def wait_for_exit(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = -1
    if fd < 0:
        import psutil

        while psutil.pid_exists(pid):
            time.sleep(POLL_S)
        return
    try:
        select.select([fd], [], [])  # readable once the process exited
    finally:
        os.close(fd)


def kill_leftovers(targets: Sequence[str]) -> list[int]:
    import psutil

    killed = []
    for target in targets:
        pid, _, created = target.partition(":")
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(int(pid))
            if repr(proc.create_time()) == created:
                proc.kill()
                killed.append(proc.pid)
    return killed


def main(argv: Sequence[str]) -> int:
    owner, *targets = argv
    wait_for_exit(int(owner))
    kill_leftovers(targets)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
