"""Every Redis key cato-mq uses, in one place. All but the Celery queues carry a TTL."""

from __future__ import annotations

PREFIX = "cato"
#: Tier names in strict service order.
TIERS = ("violated", "at_risk", "safe")
#: kombu's Redis transport splits a queue into one list per priority step.
PRIORITY_STEPS = (0, 3, 6, 9)
PRIORITY_SEP = "\x06\x16"


def queue(pool: str, tier: str) -> str:
    """Celery queue of one tier of one pool (also its Redis list for priority 0)."""
    return f"{pool}.{tier}"


def queue_lists(pool: str, tier: str) -> list[str]:
    """The Redis lists that together hold a tier queue's messages."""
    q = queue(pool, tier)
    return [q if step == 0 else f"{q}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS]


def stream(request_id: str) -> str:
    """Per-request event stream: tokens, node events, the final result."""
    return f"{PREFIX}:stream:{request_id}"


def estimates(pool: str) -> str:
    """Hash of online service-time estimates, fields ``<step>:fixed`` / ``<step>:per_token``."""
    return f"{PREFIX}:est:{pool}"


def replicas(pool: str) -> str:
    """Hash worker name -> ``"inflight concurrency heartbeat_wall"`` (the replica registry)."""
    return f"{PREFIX}:replicas:{pool}"


def window(pool: str, window_start: int) -> str:
    """Hash of counters for one time window: requests, request/node violations."""
    return f"{PREFIX}:win:{pool}:{window_start}"


def node_done(request_id: str, index: int) -> str:
    """Set once a node finished, so a redelivered duplicate does not run it again."""
    return f"{PREFIX}:done:{request_id}:{index}"
