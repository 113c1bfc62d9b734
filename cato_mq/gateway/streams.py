"""Reading the requests' Redis streams: one blocking ``XREAD`` for every open request.

A gateway process holds one ``StreamHub``: a single asyncio task that reads the streams of
all its open requests in one blocking ``XREAD`` on one connection, and hands each event to
its request's queue. No thread and no blocking call per connection, and no Redis
connection per open stream either: a thousand open streams cost one read that returns as
soon as any of them has news. A request opened while the read blocks rings the hub's
doorbell (``keys.gateway_wake``), so the read starts again with its stream in it.

``follow`` turns a request's events into what a response needs: text pieces (a redelivered
node's repeated text dropped by offset, as ``Handle.stream`` does), then the ``Result``,
or ``Failed`` (``cancelled`` when the request was cancelled).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import redis
import redis.asyncio

from cato_mq.schemas import Result
from cato_mq.state import cancel, keys

log = logging.getLogger("cato_mq.gateway")
#: Longest single blocking read, and the entries taken per stream per read.
READ_BLOCK_MS = 1000
READ_COUNT = 512
#: Backoff between reads while Redis is away: the first wait and the longest.
RETRY_FIRST_S, RETRY_MAX_S = 0.05, 1.0
WAKE_TTL_S = 3600


class Failed(Exception):
    def __init__(self, reason: str, cancelled: bool = False) -> None:
        super().__init__(reason)
        self.cancelled = cancelled


class Subscription:
    __slots__ = ("key", "last", "queue")

    def __init__(self, request_id: str) -> None:
        self.key = keys.stream(request_id)
        self.last = "0"
        self.queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()


class StreamHub:
    def __init__(self, client: redis.asyncio.Redis) -> None:  # type: ignore[type-arg]
        self._client = client
        self._wake_key = keys.gateway_wake(uuid.uuid4().hex)
        self._wake_last = "0"
        self._subs: dict[str, Subscription] = {}
        self._reading = False
        self._ringing = False
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def open_streams(self) -> int:
        return len(self._subs)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="stream-hub")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(redis.RedisError, OSError):
            await self._client.delete(self._wake_key)

    def open(self, request_id: str) -> Subscription:
        sub = Subscription(request_id)
        self._subs[sub.key] = sub
        self._changed.set()
        if self._reading and not self._ringing:  # the read in flight lacks this stream
            self._ringing = True
            asyncio.get_running_loop().create_task(self._ring())
        return sub

    def close_sub(self, sub: Subscription) -> None:
        self._subs.pop(sub.key, None)

    async def _ring(self) -> None:
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.xadd(self._wake_key, {"w": "1"}, maxlen=1, approximate=False)
            pipe.expire(self._wake_key, WAKE_TTL_S)
            await pipe.execute()
        except (redis.RedisError, OSError):
            self._ringing = False  # the read fails too, and the next one includes the stream

    async def _run(self) -> None:
        backoff = RETRY_FIRST_S
        while True:
            if not self._subs:
                self._changed.clear()
                await self._changed.wait()
                continue
            streams: dict[Any, Any] = {self._wake_key: self._wake_last}
            streams.update((k, s.last) for k, s in self._subs.items())
            self._reading, self._ringing = True, False
            try:
                replies = await self._client.xread(streams, block=READ_BLOCK_MS, count=READ_COUNT)
                backoff = RETRY_FIRST_S
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError) as exc:
                log.warning("reading streams failed, retrying: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, RETRY_MAX_S)
                continue
            finally:
                self._reading = False
            for key, entries in replies or []:
                if key == self._wake_key:
                    self._wake_last = entries[-1][0]
                    continue
                sub = self._subs.get(key)
                if sub is None:
                    continue
                for entry_id, fields in entries:
                    sub.last = entry_id
                    sub.queue.put_nowait(fields)
                    if fields.get("t") in ("end", "err"):
                        self._subs.pop(key, None)
                        break


async def follow(sub: Subscription, idle_s: float) -> AsyncIterator[str | Result]:
    """The request's text pieces, then its ``Result``; raises ``Failed`` on its ``err``, and
    ``TimeoutError`` when nothing came for ``idle_s``."""
    shown: dict[str, int] = {}
    while True:
        fields = await asyncio.wait_for(sub.queue.get(), idle_s)
        kind = fields.get("t")
        if kind == "tok":
            node, offset, data = fields["n"], int(fields["o"]), fields["d"]
            have = shown.get(node, 0)
            if offset + len(data) <= have:
                continue
            shown[node] = offset + len(data)
            yield data[max(0, have - offset) :]
        elif kind == "end":
            yield Result.model_validate_json(fields["d"])
            return
        elif kind == "err":
            raise Failed(fields.get("d", "request failed"), cancel.cancelled(fields))
