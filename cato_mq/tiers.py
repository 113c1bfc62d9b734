"""The tier policy: which priority queue a node goes to. Pure; the router feeds it."""

from __future__ import annotations

import math
from enum import StrEnum


class Tier(StrEnum):
    violated = "violated"
    at_risk = "at_risk"
    safe = "safe"
    #: cato+ only: nodes whose request is already decided or out of reach even alone;
    #: served only while nothing feasible waits (``cato_mq.admission``)
    best_effort = "best_effort"


#: Redis message priority per tier (0 is served first). Routing to the tier queue *and*
#: setting this priority keeps strict order even if a worker lists its queues wrongly.
PRIORITY: dict[Tier, int] = {Tier.violated: 0, Tier.at_risk: 3, Tier.safe: 6, Tier.best_effort: 9}


def expected_wait(queued: int, inflight: int, slots: int, mean_service_s: float) -> float:
    """Seconds a node placed at the back of the pool would wait for a batch slot.

    ``slots`` is replicas x per-replica concurrency. While free slots outnumber the queue
    the node starts at once; otherwise it waits for the queue ahead to drain through all
    slots, each slot finishing one node per ``mean_service_s``.
    """
    if slots <= 0:
        return math.inf
    free = slots - inflight
    if queued < free:
        return 0.0
    return (queued - free + 1) * mean_service_s / slots


def decide_tier(slack_s: float, wait_s: float, service_s: float) -> Tier:
    """CATO's priorities: violated once the deadline passed, at-risk when waiting behind
    everything queued would miss it, safe otherwise."""
    if slack_s <= 0:
        return Tier.violated
    if wait_s + service_s > slack_s:
        return Tier.at_risk
    return Tier.safe
