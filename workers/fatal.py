"""The worker's end when its engine dies: exit at once, non-zero, without acking anything.

A warm Celery shutdown would let each in-flight node fail on the dead engine, and a failed
node is acked: its request would end with an error. Exiting instead leaves the nodes in
Redis's unacked set, and another worker redelivers them after the visibility timeout
(``task_acks_late``); the regenerated text continues the client's stream (same seed).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import NoReturn

log = logging.getLogger("cato_mq.worker")

#: Exit code of a worker whose engine failed to start or died; the CLI's usage errors are 2.
EXIT_ENGINE_FAILED = 3
#: Releasing the device (killing the engine's processes) gets this long before we exit.
CLOSE_TIMEOUT_S = 15.0

_exiting = threading.Lock()


def engine_died(name: str, close: Callable[[], None], reason: BaseException) -> NoReturn:
    """Called from any thread that notices the engine of worker ``name`` is dead; never
    returns. ``close`` releases the device (it shuts the engine's processes down)."""
    if not _exiting.acquire(blocking=False):
        while True:  # another thread is already taking the process down
            time.sleep(3600)
    log.critical("engine of %s died (%s); exiting so its in-flight requests are redelivered", name, reason)
    closer = threading.Thread(target=close, name="close-dead-engine", daemon=True)
    closer.start()
    closer.join(CLOSE_TIMEOUT_S)  # orphaned engine processes would hold device memory
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_ENGINE_FAILED)
