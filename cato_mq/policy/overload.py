"""When to tell a refused client to come back: the ``Retry-After`` of ``Overloaded``.

``submit`` refuses a request when its pool's backlog is at its bound
(``CATO_MAX_BACKLOG``). The client should wait until enough of the backlog has drained
for its request to get a place: ``queued - limit + 1`` nodes, served ``slots`` at a time,
each taking about ``node_s``. A pool with no live replica drains nothing until one
starts, so that wait is the longest we advise.
"""

from __future__ import annotations

import math

#: Never advise less than this (HTTP's Retry-After counts whole seconds) ...
MIN_RETRY_AFTER_S = 1.0
#: ... nor more: a client told to wait longer would rather give up, and the pool may scale.
MAX_RETRY_AFTER_S = 60.0


def over(queued: int, limit: int) -> bool:
    """Whether one more request is refused; ``limit`` 0 bounds nothing."""
    return limit > 0 and queued >= limit


def retry_after_s(queued: int, limit: int, slots: int, node_s: float) -> float:
    """Whole seconds until the pool has drained enough for one more request."""
    if slots <= 0 or not math.isfinite(node_s):
        return MAX_RETRY_AFTER_S
    excess = max(1, queued - limit + 1)
    wait = math.ceil(excess * max(node_s, 0.0) / slots)
    return min(MAX_RETRY_AFTER_S, max(MIN_RETRY_AFTER_S, float(wait)))
