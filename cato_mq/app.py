"""The Celery application and the shared Redis client, built lazily from ``Settings``."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import redis
from celery import Celery

from cato_mq.settings import Settings, get_settings
from cato_mq.state import connect, keys

#: How often an idle worker sweeps the unacked set for messages of crashed workers; with
#: throttle 1 a crashed worker's node is back in its queue within visibility timeout + this.
RESTORE_INTERVAL_S = 1
#: The sweep holds a Redis lock while it runs (milliseconds). kombu lets it expire only after
#: 300 s, so a worker killed mid-sweep stopped every restore for five minutes, and a node
#: it had to hand over waited that long (seen in CI: a request stuck after two kills).
UNACKED_MUTEX_EXPIRE_S = 5
#: A node message's worst case is about this many bytes per character of prompt and
#: context (JSON escapes of up to 12 bytes, 14 once the body is escaped in the envelope,
#: the retrieved chunks again): larger messages cannot come from ``submit`` and are
#: dead-lettered at the worker.
MESSAGE_BYTES_PER_PROMPT_CHAR = 48
MIN_MESSAGE_LIMIT_BYTES = 8 << 20


#: cato-mq's kombu transport (``state/transport.py``): no pop window, no poison deaths;
#: its Sentinel form (``state/sentinel.py``) for ``sentinel://`` URLs.
TRANSPORT = "cato_mq.state.transport:Transport"
SENTINEL_TRANSPORT = "cato_mq.state.sentinel:SentinelTransport"
#: kombu's publish retries: 0.1 s, then 0.3, 0.5 ... 1 s apart, about 7 s in all.
PUBLISH_RETRY_POLICY = {"max_retries": 10, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 1.0}


def max_message_bytes(s: Settings) -> int:
    """The size limit of one message at the worker, from ``CATO_MAX_PROMPT_CHARS``."""
    return max(MIN_MESSAGE_LIMIT_BYTES, MESSAGE_BYTES_PER_PROMPT_CHAR * s.max_prompt_chars)


def celery_config(s: Settings) -> dict[str, Any]:
    transport = {
        # no pop window, poison buried, acks that survive a reconnect (state/transport.py)
        "unacked_key": keys.UNACKED,
        "unacked_index_key": keys.UNACKED_INDEX,
        "unacked_mutex_key": keys.UNACKED_MUTEX,
        "max_message_bytes": max_message_bytes(s),
        # a delivery's attempt counter outlives its deliveries: a redelivery comes within
        # the visibility timeout; later a stale write finds the node done anyway
        "attempt_ttl": max(60, int(10 * s.visibility_timeout_s)),
        "result_ttl": s.result_ttl_s,
        "visibility_timeout": s.visibility_timeout_s,
        # strict -Q order (violated, at_risk, safe); kombu >= 5.7 keeps it (field notes 1.2)
        "queue_order_strategy": "priority",
        "priority_steps": list(keys.PRIORITY_STEPS),
        "unacked_restore_interval": RESTORE_INTERVAL_S,
        "unacked_mutex_expire": UNACKED_MUTEX_EXPIRE_S,
        "unacked_restore_throttle": 1,
        # the body as JSON text inside the envelope, not base64 (kombu's default): a node
        # message is a quarter smaller and is not encoded and decoded once more per hop.
        # Either form is read (the envelope says which), so queued messages survive an upgrade
        "body_encoding": None,
    }
    sentinel = connect.is_sentinel(s.redis_url)
    if sentinel:
        transport["master_name"] = s.redis_master
    # rediss://: the broker's connections and any Redis result backend check the server's
    # certificate as the URL says (settings refuse an unchecked one unless told)
    tls = connect.tls_options(s.redis_url)
    return {
        "broker_url": s.redis_url,
        "broker_transport": SENTINEL_TRANSPORT if sentinel else TRANSPORT,
        "broker_transport_options": transport,
        "broker_use_ssl": tls,
        "broker_failover_strategy": connect.stay_on_sentinels if sentinel else None,
        "redis_backend_use_ssl": tls,
        "broker_connection_retry_on_startup": True,
        # a worker rides out a Redis restart of any length instead of exiting after 100 tries
        "broker_connection_max_retries": None,
        "broker_channel_error_retry": True,
        "task_routes": ("cato_mq.router.route",),
        # a publish (a submit, a next link) rides out a Redis restart of a few seconds
        "task_publish_retry_policy": PUBLISH_RETRY_POLICY,
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
    s = get_settings()
    return connect.connect(s.redis_url, s.redis_master)


#: What else caches a client or settings (the router's pool reader): forgotten with them.
_on_reset: list[Callable[[], None]] = []


def on_reset(forget: Callable[[], None]) -> None:
    _on_reset.append(forget)


def reset() -> None:
    """Forget cached settings, app and clients (tests point cato-mq at a new Redis)."""
    get_settings.cache_clear()
    get_app.cache_clear()
    redis_client.cache_clear()
    for forget in _on_reset:
        forget()


def __getattr__(name: str) -> Any:
    # `celery -A cato_mq.app flower` looks up `cato_mq.app.app`
    if name == "app":
        return get_app()
    raise AttributeError(name)
