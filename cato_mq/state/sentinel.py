"""cato-mq's broker transport over Redis Sentinel, for ``sentinel://`` URLs.

The channel of ``state.transport`` (atomic pop, doorbells, fencing, dead letters) on top
of kombu's ``SentinelChannel``, which asks the sentinels for the current master at each
connect, so the broker follows a failover on its next reconnect. ``app.celery_config``
names ``SentinelTransport`` for a Sentinel URL, with ``connect.stay_on_sentinels`` as
kombu's failover strategy (see there: without it kombu swaps this transport for its own).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.sentinel import Sentinel

from cato_mq.state.connect import sentinel_nodes
from cato_mq.state.transport import Channel, Transport


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """The channel above over kombu's Sentinel channel (``sentinel://`` URLs): every
    connection asks the sentinels for the current master, so a failover is followed on
    the next reconnect; pops, doorbells, fencing and dead letters stay as above."""

    from_transport_options = (  # type: ignore[assignment]
        *Channel.from_transport_options, "master_name", "min_other_sentinels", "sentinel_kwargs",
    )
    master_name: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sentinels, self._master_password, _ = sentinel_nodes(";".join(self.connection.client.alt))

    def _get_pool(self, asynchronous: bool = False) -> Any:
        if not asynchronous and (self.connection is None or self.connection.client is None):
            # closed by a reconnect: acks still reach whichever server is master now
            sentinels = Sentinel(self._sentinels, socket_timeout=self.socket_timeout or 1.0)
            return sentinels.master_for(str(self.master_name), password=self._master_password).connection_pool
        return kombu_redis.SentinelChannel._get_pool(self, asynchronous)


class SentinelTransport(Transport):
    """``Transport`` for ``sentinel://`` URLs."""

    Channel = SentinelChannel
    default_port = 26379  # type: ignore[assignment]  # kombu's None default
