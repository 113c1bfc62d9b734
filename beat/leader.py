"""The leader lock: of several beats started by mistake, only the holder sends ticks.

``SET NX PX`` takes the lock; the holder renews it with a compare-and-expire, so a beat
that stalled past the TTL and lost it cannot renew someone else's. The token also travels
in every tick (fencing): a tick sent by a former leader is ignored by the provisioner.
"""

from __future__ import annotations

import os
import socket
import uuid

from cato_mq.fleet.records import Redis
from cato_mq.state import keys

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class LeaderLock:
    def __init__(self, client: Redis, ttl_s: float, key: str | None = None) -> None:
        self.client = client
        self.key = key or keys.leader()
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def hold(self) -> bool:
        """Renew the lock if ours, else try to take it. True while we lead."""
        if self._renew(keys=[self.key], args=[self.token, self.ttl_ms]):
            return True
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.token])


def is_leader(client: Redis, token: str | None) -> bool:
    """Fencing check on the consumer side: was this tick sent by the current leader?"""
    return token is not None and client.get(keys.leader()) == token
