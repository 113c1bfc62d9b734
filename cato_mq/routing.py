"""The Celery router: puts every node message in ``<pool>.<tier>`` with the tier's priority.

Celery calls it at each publish, including when a worker publishes the next chain link,
so a later node is re-tiered from the live state at the moment it becomes runnable.
The decision is ``tiers.decide_tier``; this module only gathers its inputs. Under cato+
(``CATO_ROUTING=cato+``) a node whose request is lost (``admission.lost``) goes to the
best-effort tier instead, served only while nothing else waits.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from cato_mq import keys
from cato_mq.admission import lost
from cato_mq.observe import STALE_HEARTBEATS, Observer, PoolSnapshot
from cato_mq.tiers import PRIORITY, Tier, decide_tier, expected_wait

#: The one task name the router handles; everything else (beat, control) routes normally.
NODE_TASK = "cato.node"

_observer: Observer | None = None


def observer() -> Observer:
    global _observer
    if _observer is None:
        from cato_mq.app import redis_client
        from cato_mq.settings import get_settings

        s = get_settings()
        _observer = Observer(redis_client(), s.router_cache_s, STALE_HEARTBEATS * s.heartbeat_s)
    return _observer


def _routing() -> str:
    from cato_mq.settings import get_settings

    return get_settings().routing  # CATO_ROUTING: cato, cato+ or the fifo baseline


def reset() -> None:
    global _observer
    _observer = None


def tier_for(snapshot: PoolSnapshot, deadline: float, expect_s: float, now: float) -> Tier:
    wait = expected_wait(
        snapshot.queued_total, snapshot.inflight, snapshot.slots, snapshot.estimate("node", 0.0)
    )
    return decide_tier(deadline - now, wait, expect_s)


def route(
    name: str, args: Any, kwargs: Mapping[str, Any] | None, options: Any, task: Any = None, **kw: Any
) -> dict[str, Any] | None:
    if name != NODE_TASK or not kwargs:
        return None
    return destination(kwargs, _routing())


def destination(kwargs: Mapping[str, Any], routing: str) -> dict[str, Any]:
    """Queue and priority of one node message under ``routing``."""
    pool = kwargs["pool"]
    if routing == "fifo":
        return {"queue": keys.queue(pool, Tier.safe), "priority": PRIORITY[Tier.safe]}
    now = time.time()
    # "due"/"rest" are absent only in messages from a client older than cato+
    due, rest = kwargs.get("due"), kwargs.get("rest")
    if routing == "cato+" and due is not None and rest is not None and lost(now, due, rest):
        tier = Tier.best_effort
    else:
        tier = tier_for(observer().pool(pool), kwargs["deadline"], kwargs["expect"], now)
    return {"queue": keys.queue(pool, tier), "priority": PRIORITY[tier]}
