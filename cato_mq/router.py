"""The Celery router: puts every node message in ``<pool>.<tier>`` with the tier's priority.

Celery calls it at each publish, including when a worker publishes the next chain link,
so a later node is re-tiered from the live state at the moment it becomes runnable.
The decision is ``policy.tiers.tier_for``; this module only gathers its inputs (a cached
``state.pool`` snapshot). Under cato+ (``CATO_ROUTING=cato+``) a node of an E2E request gets
its tier's short-work or long-work step (``tiers.long_work``), and a node whose request is lost
(``policy.admission.lost``) goes to the best-effort tier instead, served only while
nothing else waits, unless ``CATO_ON_LOST=shed`` ends it (``policy.admission.shed``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from cato_mq import app
from cato_mq.policy.admission import lost, shed
from cato_mq.policy.tiers import Tier, long_work, message_priority, tier_for
from cato_mq.settings import get_settings
from cato_mq.state import keys, registry
from cato_mq.state.pool import Observer

#: The one task name the router handles; everything else (beat, control) routes normally.
NODE_TASK = "cato.node"

_observer: Observer | None = None


def observer() -> Observer:
    global _observer
    if _observer is None:
        s = get_settings()
        _observer = Observer(app.redis_client(), s.router_cache_s, registry.stale_after(s.heartbeat_s))
    return _observer


def reset() -> None:
    global _observer
    _observer = None


app.on_reset(reset)


def route(
    name: str, args: Any, kwargs: Mapping[str, Any] | None, options: Any, task: Any = None, **kw: Any
) -> dict[str, Any] | None:
    if name != NODE_TASK or not kwargs:
        return None
    s = get_settings()
    return destination(kwargs, s.routing, s.on_lost)  # CATO_ROUTING: cato, cato+ or the fifo baseline


def destination(kwargs: Mapping[str, Any], routing: str, on_lost: str = "serve") -> dict[str, Any]:
    """Queue and priority of one node message under ``routing``. Under cato+ with
    ``on_lost="shed"``, a node to be shed goes to the violated tier: the worker that pops it
    ends its request at once (``workers.tasks``), where best effort would keep the client
    waiting for its error behind all other work."""
    pool = kwargs["pool"]
    if routing == "fifo":
        return {"queue": keys.queue(pool, Tier.safe), "priority": message_priority(Tier.safe, False, within_tier=False)}
    now = time.time()
    # "due"/"rest" are absent only in messages from a client older than cato+
    due, rest = kwargs.get("due"), kwargs.get("rest")
    ttft, plus = bool(kwargs.get("ttft")), routing == "cato+"
    long = False
    if plus and due is not None and rest is not None and lost(now, due, rest):
        doomed = on_lost == "shed" and shed(now, due, rest, ttft)
        tier = Tier.violated if doomed else Tier.best_effort
    else:
        snapshot = observer().pool(pool)
        tier = tier_for(snapshot, kwargs["deadline"], kwargs["expect"], now)
        long = plus and not ttft and long_work(rest, snapshot.estimates)
    priority = message_priority(tier, ttft, within_tier=plus, long_work=long)
    return {"queue": keys.queue(pool, tier), "priority": priority}
