"""Every Redis key cato-mq uses, in one place. All but the Celery queues and the counters
(``counter``, ``dead_counts``: bounded in size, and Prometheus counters must not reset) carry a TTL."""

from __future__ import annotations

from bisect import bisect

from cato_mq.policy.tiers import PRIORITY_STEPS as PRIORITY_STEPS  # re-exported: the lists a queue has
from cato_mq.policy.tiers import TIER_STEPS, Tier

PREFIX = "cato"
#: Tier names in strict service order (``best_effort`` holds nodes only under cato+).
TIERS: tuple[str, ...] = tuple(t.value for t in Tier)
_TIER_NAMES = frozenset(TIERS)
PRIORITY_SEP = "\x06\x16"


def queue(pool: str, tier: str) -> str:
    """Celery queue of one tier of one pool (also its Redis list for priority 0)."""
    return f"{pool}.{tier}"


def tier_queues(pool: str) -> list[str]:
    """The pool's tier queues in strict service order (a worker's ``-Q``)."""
    return [queue(pool, t) for t in TIERS]


def tier_of(queue_name: str) -> str:
    """The tier a tier queue's name (a message's routing key) stands for: ``pool.tier``."""
    return queue_name.rpartition(".")[2]


def queue_steps(queue_name: str, default: tuple[int, ...] = PRIORITY_STEPS) -> tuple[int, ...]:
    """The priority steps ``queue_name`` has a Redis list for: a tier queue its tier's own
    (the router gives its nodes no other priority), any other queue ``default``."""
    tier = tier_of(queue_name)
    return TIER_STEPS[Tier(tier)] if tier in _TIER_NAMES else default


def served_lists(queue_name: str, default: tuple[int, ...] = PRIORITY_STEPS) -> list[tuple[int, str]]:
    """The Redis lists a worker polls for ``queue_name``, each with the step it is served
    at: one per step of the queue's own, then its bare name at its last step. The bare name
    is where a publisher that knows no priority steps puts a message (kombu's defaults:
    priority 0), so such a message is served after the tier's own, not left unpolled."""
    steps = queue_steps(queue_name, default)
    lists = [(step, priority_list(queue_name, step, default)) for step in steps]
    return lists if lists[0][1] == queue_name else [*lists, (steps[-1], queue_name)]


def list_names(queue_name: str, default: tuple[int, ...] = PRIORITY_STEPS) -> list[str]:
    """The Redis lists that together hold ``queue_name``'s messages, in service order."""
    return [name for _, name in served_lists(queue_name, default)]


def queue_lists(pool: str, tier: str) -> list[str]:
    """The Redis lists of a pool's tier queue, in service order."""
    return list_names(queue(pool, tier))


def list_count(tier: str) -> int:
    """How many Redis lists each pool's queue of ``tier`` has."""
    return _LIST_COUNT[tier]


def backlog_lists(pool: str) -> list[str]:
    """Every Redis list of every tier queue of ``pool``: what the backlog bound counts."""
    return [name for tier in TIERS for name in queue_lists(pool, tier)]


def priority_list(queue_name: str, priority: int, default: tuple[int, ...] = PRIORITY_STEPS) -> str:
    """The Redis list of ``queue_name`` that holds messages of ``priority``. kombu rounds a
    priority down to a step; here to one of the queue's own steps (``queue_steps``), and a
    priority below them to the first, so a publish and a worker's pop agree on the list
    even for a priority that is not the queue's."""
    steps = queue_steps(queue_name, default)
    step = steps[max(0, bisect(steps, priority) - 1)]
    return queue_name if step == 0 else f"{queue_name}{PRIORITY_SEP}{step}"


#: ``list_count`` per tier: the same for every pool, and read on every pool snapshot, so
#: counted once rather than by building a queue's list names each time
_LIST_COUNT: dict[str, int] = {t: len(queue_lists("", t)) for t in TIERS}


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


# --- delivery, dead letters and broker incarnation (issue 13) -----------------------------

#: kombu's unacked bookkeeping (its defaults, named here so one module owns every key):
#: hash delivery tag -> ``[message, exchange, routing key]`` and its index by pop time.
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"
UNACKED_MUTEX = "unacked_mutex"


#: Ends the task id of an LLM node whose first token decides its request's SLA: a held
#: worker's pop tells it from the other LLM nodes by its raw id (``state.hold``).
FIRST_TOKEN_TAG = "-ttft"


def node_task_id(request_id: str, index: int, step: str, first_token: bool = False) -> str:
    """The Celery task id of a request's node: names its message and its attempt counter.
    ``first_token``: the node's first token decides the SLA (``Node.first_token_decides``)."""
    return f"{request_id}-{index}-{step}{FIRST_TOKEN_TAG if first_token else ''}"


#: The head of a node's task id as ``node_task_id`` writes it, for readers that match it
#: in text: the request id (captured), then ``-<index>-``; the step follows. As a Python
#: regex and as a Lua pattern (the transport's pop script).
NODE_ID_HEAD_REGEX = r"([0-9a-f]{32})-\d+-"
NODE_ID_HEAD_LUA = "(" + "%x" * 32 + ")%-%d+%-"


def request_of_task(task_id: str) -> str | None:
    """The request id inside a node's task id, or None when the id is not a node's."""
    rid, _, rest = task_id.partition("-")
    ok = len(rid) == 32 and all(c in "0123456789abcdef" for c in rid) and rest
    return rid if ok else None


def request(request_id: str) -> str:
    """Marks a request as submitted here, set with its first node's publish: lets ``result``
    tell an id it never saw (or one expired with its stream) from one still queued."""
    return f"{PREFIX}:req:{request_id}"


def attempt_prefix() -> str:
    """Prefix of the per-message delivery counters (the fencing token of each delivery);
    the transport's pop script appends the task id."""
    return f"{PREFIX}:attempt:"


def attempt(task_id: str) -> str:
    """Counter of a message's deliveries: the latest delivery is the one allowed to write."""
    return f"{attempt_prefix()}{task_id}"


def bell(queue_name: str) -> str:
    """A queue's doorbell list: one token per publish wakes an idle consumer's BLPOP."""
    return f"{PREFIX}:bell:{queue_name}"


def llm_hold(consumer: str) -> str:
    """Set (with a short expiry) while a worker's cato+ gate could admit no LLM node: that
    worker's pops pass over LLM nodes (``state.hold``). ``consumer`` is per process."""
    return f"{PREFIX}:llm-hold:{consumer}"


def dead() -> str:
    """Stream of dead letters: messages no worker can run, with reason, queue and time."""
    return f"{PREFIX}:dead"


def dead_counts() -> str:
    """Hash reason -> dead letters counted (a monotonic counter for metrics exporters)."""
    return f"{PREFIX}:dead:counts"


def epoch() -> str:
    """A random token naming this incarnation of Redis's data: a Redis that restarted
    without persistence has none (or a new one), so clients know their requests are gone."""
    return f"{PREFIX}:epoch"


# --- cancellation (issue 11) --------------------------------------------------------------


def cancel_prefix() -> str:
    """Prefix of the cancel markers; the transport's pop script appends a request id."""
    return f"{PREFIX}:cancel:"


def cancel(request_id: str) -> str:
    """A request's cancel marker: ``1`` once a client cancelled it, ``2`` once a worker
    stopped a node of it and counted it cancelled (``state.cancel``). TTL: the result's."""
    return f"{cancel_prefix()}{request_id}"


def cancels() -> str:
    """Pub/sub channel of cancelled request ids: a worker running one aborts it at once."""
    return f"{PREFIX}:cancels"


def cancelled_counts() -> str:
    """Hash pool -> requests cancelled (a monotonic counter for metrics exporters). The
    pool's violation windows (``window``) count them too, in field ``cancelled``, apart
    from ``requests`` (met or missed) and ``failed``."""
    return f"{PREFIX}:cancelled:counts"


def gateway_wake(gateway_id: str) -> str:
    """A gateway process's doorbell stream: a write wakes its one blocking ``XREAD`` to add
    a newly opened request's stream (``cato_mq.gateway.streams``). MAXLEN 1, with a TTL."""
    return f"{PREFIX}:gw:wake:{gateway_id}"


# --- Prometheus counters (issue 12) -------------------------------------------------------

#: The counter hashes ``cato_mq.metrics`` reads: fields ``label|label|...`` -> count. They
#: carry no TTL: Prometheus counters must never fall back, and each hash holds one field
#: per label combination (pools x kinds x buckets), never one per request.
COUNTERS = ("requests", "nodes", "ttft", "e2e", "admission", "provisioner")


def counter(name: str) -> str:
    """Hash of one counter family (``COUNTERS``), written where its fact happens."""
    if name not in COUNTERS:
        raise ValueError(f"unknown counter {name!r}: one of {', '.join(COUNTERS)}")
    return f"{PREFIX}:metrics:{name}"


def outcome(request_id: str) -> str:
    """Set once a request's outcome (met, missed, failed, cancelled) was counted: the first
    writer wins, so a request counts once whatever happens to it afterwards."""
    return f"{PREFIX}:outcome:{request_id}"
