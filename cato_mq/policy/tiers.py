"""The tier policy: which priority queue a node goes to. Pure; the router and the simulator
feed it a ``PoolSnapshot``.

``Tier`` is the one owner of the tier names, their service order (the enum's order) and
their Redis message priorities: queue names (``cato_mq.state.keys``), kombu's priority
steps and the workers' ``-Q`` order are all derived from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from cato_mq.policy.estimates import alone_estimate


class Tier(StrEnum):
    violated = "violated"
    at_risk = "at_risk"
    safe = "safe"
    #: cato+ only: nodes whose request is already decided or out of reach even alone;
    #: served only while nothing feasible waits (``cato_mq.policy.admission``)
    best_effort = "best_effort"


#: Redis message priority per tier (0 is served first). Routing to the tier queue *and*
#: setting this priority keeps strict order even if a worker lists its queues wrongly.
PRIORITY: dict[Tier, int] = {Tier.violated: 0, Tier.at_risk: 3, Tier.safe: 6, Tier.best_effort: 9}


#: cato+ splits E2E work within a tier: a node whose request has no more engine time left
#: than a prefill and this many tokens (``long_work``) goes ahead of one with more. In the
#: simulator's paper mix, cuts of 8 to 64 all beat no split; 24 to 32 did best.
SHORT_WORK_TOKENS = 32


def message_priority(tier: Tier, ttft: bool, within_tier: bool = True, long_work: bool = False) -> int:
    """A node's Redis message priority: its tier's, and under cato+ (``within_tier``) one
    step more for a node of an E2E request with short work left, two with long. A TTFT
    request's SLA path ends at its first token, one prefill; an E2E request's runs through
    its whole decode. So within a tier the node whose SLA costs the engine least goes first
    (shortest remaining SLA work first): under overload that meets more SLAs per
    engine-second. Best effort keeps one step."""
    if not within_tier or ttft or tier is Tier.best_effort:
        return PRIORITY[tier]
    return PRIORITY[tier] + (2 if long_work else 1)


def long_work(rest_s: float | None, estimates: Mapping[str, float]) -> bool:
    """Whether a node's request has more than ``SHORT_WORK_TOKENS`` of work left on its SLA
    path: ``rest_s`` (its seconds left with the engine to itself, as the client computed
    them) against a prefill and that many tokens at the pool's unloaded speed. Unknown
    work (a client older than cato+) is short."""
    if rest_s is None:
        return False
    fixed, per_token = (alone_estimate(estimates, name) for name in ("llm:fixed", "llm:per_token"))
    return rest_s > fixed + SHORT_WORK_TOKENS * per_token


#: The message priorities a tier's queue holds. kombu's Redis transport splits a queue into
#: one list per priority step; a tier queue has a list for each of its own steps only
#: (``state.keys.served_lists``), not one per step of every tier.
TIER_STEPS: dict[Tier, tuple[int, ...]] = {
    t: tuple(sorted({message_priority(t, ttft, True, long) for ttft in (True, False) for long in (True, False)}))
    for t in Tier
}
#: Every message priority: each (tier, SLA metric, work left) has a list of its own, served
#: in this order.
PRIORITY_STEPS: tuple[int, ...] = tuple(sorted({step for steps in TIER_STEPS.values() for step in steps}))

#: Width of one tier's band of engine priorities: a deadline in ms since the epoch stays
#: below it until the year 2286, and four bands stay far inside vLLM's int64.
ENGINE_BAND = 10**13
#: Tiers whose queues a node may wait behind; best effort is served after every node the
#: router places, so the router does not count it.
AHEAD: tuple[Tier, ...] = tuple(t for t in Tier if t is not Tier.best_effort)


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """What the tier decision knows of a pool: queued nodes per tier, the live replicas'
    batch slots and in-flight nodes, and the pool's service-time estimates."""

    queued: dict[Tier, int]
    replicas: int
    slots: int
    inflight: int
    estimates: dict[str, float] = field(default_factory=dict)
    read_at: float = 0.0

    @property
    def queued_total(self) -> int:
        return sum(self.queued.values())

    def estimate(self, name: str, default: float) -> float:
        return self.estimates.get(name, default)


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


def tier_for(snapshot: PoolSnapshot, deadline: float, expect_s: float, now: float) -> Tier:
    """The tier of a node due at ``deadline`` that expects ``expect_s`` of service."""
    wait = expected_wait(
        snapshot.queued_total, snapshot.inflight, snapshot.slots, snapshot.estimate("node", 0.0)
    )
    return decide_tier(deadline - now, wait, expect_s)


def engine_priority(tier: str, deadline: float) -> int:
    """A node's request priority inside a continuously batching engine (vLLM's
    ``scheduling_policy="priority"``: lower is scheduled first, ties by arrival): the tier
    order of the queues continued inside the batch, then the earliest deadline. It decides
    which waiting prompt is prefilled first and which running request is preempted last."""
    rank = PRIORITY[Tier(tier)] if tier in Tier.__members__ else PRIORITY[Tier.safe]
    return rank * ENGINE_BAND + min(ENGINE_BAND - 1, max(0, round(deadline * 1000)))
