"""The Celery application and the shared Redis client, built lazily from ``Settings``."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import redis
from celery import Celery

from cato_mq import keys
from cato_mq.settings import Settings, get_settings

#: How often an idle worker sweeps the unacked set for messages of crashed workers; with
#: throttle 1 a crashed worker's node is back in its queue within visibility timeout + this.
RESTORE_INTERVAL_S = 1


def celery_config(s: Settings) -> dict[str, Any]:
    transport = {
        "visibility_timeout": s.visibility_timeout_s,
        # strict -Q order (violated, at_risk, safe); kombu >= 5.7 keeps it (field notes 1.2)
        "queue_order_strategy": "priority",
        "priority_steps": list(keys.PRIORITY_STEPS),
        "unacked_restore_interval": RESTORE_INTERVAL_S,
        "unacked_restore_throttle": 1,
    }
    return {
        "broker_url": s.redis_url,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "task_routes": ("cato_mq.routing.route",),
        "task_serializer": "json",
        "accept_content": ["json"],
        # a message is acked only after its node ran; a killed worker's node is redelivered
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # hold no more messages than free threads: no priority inversion in a local buffer
        "worker_prefetch_multiplier": 1,
        # the router sets priority; an inherited one would override it (field notes 1.5)
        "task_inherit_parent_priority": False,
        "task_default_priority": 6,
        # results travel in the request's stream, not Celery's backend: fewer Redis writes
        "task_ignore_result": True,
        # task events cost ~0.8 ms per hop (bench overhead): off until a monitor turns them
        # on (Flower broadcasts enable_events), or `cato-mq worker --events`
        "worker_send_task_events": False,
        "worker_hijack_root_logger": False,
        "worker_soft_shutdown_timeout": 0.0,
    }


@lru_cache(maxsize=1)
def get_app() -> Celery:
    app = Celery("cato_mq")
    app.conf.update(celery_config(get_settings()))
    return app


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis[str]:
    return redis.Redis.from_url(get_settings().redis_url, decode_responses=True)


def reset() -> None:
    """Forget cached settings, app and clients (tests point cato-mq at a new Redis)."""
    from cato_mq import routing

    get_settings.cache_clear()
    get_app.cache_clear()
    redis_client.cache_clear()
    routing.reset()


def __getattr__(name: str) -> Any:
    # `celery -A cato_mq.app flower` looks up `cato_mq.app.app`
    if name == "app":
        return get_app()
    raise AttributeError(name)
