"""Every Redis key cato-mq uses, in one place. All but the Celery queues carry a TTL."""

from __future__ import annotations

PREFIX = "cato"
#: Tier names in strict service order (``best_effort`` holds nodes only under cato+).
TIERS = ("violated", "at_risk", "safe", "best_effort")
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
    """Hash worker name -> ``"inflight concurrency heartbeat_wall [state]"`` (the replica
    registry); state is ``ready`` or ``draining`` (absent in older workers: ready)."""
    return f"{PREFIX}:replicas:{pool}"


def window(pool: str, window_start: int) -> str:
    """Hash of counters for one time window: requests, request/node violations."""
    return f"{PREFIX}:win:{pool}:{window_start}"


def node_done(request_id: str, index: int) -> str:
    """Set once a node finished, so a redelivered duplicate does not run it again."""
    return f"{PREFIX}:done:{request_id}:{index}"


# --- provisioner, agents and fleet (issue 4) ---------------------------------------------


def agent(host: str) -> str:
    """Hash of one host's agent: ``devices``, ``beat`` and ``dev:<device>`` replica records.
    Its TTL is the agent's lease: a dead agent's record vanishes with it."""
    return f"{PREFIX}:agent:{host}"


def agents() -> str:
    """Sorted set host -> last heartbeat (wall); members whose ``agent`` hash is gone are dead."""
    return f"{PREFIX}:agents"


def lease(host: str, device: str) -> str:
    """``"<pool> <replica> <requested_wall>"`` while a device is allocated, PX = lease; the
    host's agent renews it, so it expires when the agent dies."""
    return f"{PREFIX}:lease:{host}:{device}"


def orders(host: str) -> str:
    """List of JSON spawn/retire orders for one host's agent (a queue; a TTL still bounds it)."""
    return f"{PREFIX}:orders:{host}"


def timeline() -> str:
    """Stream of replica state changes (requested, starting, ready, draining, gone)."""
    return f"{PREFIX}:timeline"


def leader() -> str:
    """The beat leader lock: holds the token of the one beat allowed to send ticks."""
    return f"{PREFIX}:leader"


def tick_mutex() -> str:
    """Held while one provisioner tick runs, so two control workers never act at once."""
    return f"{PREFIX}:prov:mutex"


def prov_state() -> str:
    """JSON of the scaling policy's state between ticks (cooldowns, calm runs)."""
    return f"{PREFIX}:prov:state"


def prov_last() -> str:
    """JSON of the last tick: observations summary, desired replicas, orders sent."""
    return f"{PREFIX}:prov:last"


def load_times() -> str:
    """Hash pool -> measured model load seconds (spawn to ready) of its latest replica."""
    return f"{PREFIX}:prov:load"


# --- engine profiles (issue 3) -----------------------------------------------------------


def profile(pool: str) -> str:
    """JSON of the pool's latest ``cato-mq profile`` (the file's contents); workers without a
    profile file seed their estimates from it."""
    return f"{PREFIX}:profile:{pool}"
