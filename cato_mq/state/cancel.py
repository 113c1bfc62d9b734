"""Cancelling a request, end to end: the client's one call, and the worker's count.

A client (the gateway when an editor hangs up, or ``Handle.cancel()``) runs ``CANCEL`` once:
it sets the request's marker (``keys.cancel``), ends the request's stream with an ``err``
event marked ``cancelled`` (so every reader stops), and publishes the id on
``keys.cancels``. Then:

* a node still queued is popped with the marker seen (the transport's pop script stamps
  it in the ``cato_cancelled`` header) and skipped: it never reaches an engine, and the
  chain stops there;
* a node running on a worker is aborted on its engine when the worker hears the id
  (``workers.cancels``), or at its next heartbeat if it missed the message;
* whichever worker stops a node of the request counts it once (``Ledger.cancelled``):
  apart from met and missed (a request that ended before its cancel was counted as met
  or missed, and stays so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

from cato_mq.state import keys

if TYPE_CHECKING:
    import redis
    import redis.asyncio

    Redis: TypeAlias = redis.Redis[str]

#: Why a cancelled request's stream ended, as its readers see it.
REASON = "request cancelled by the client"
#: The field that marks an ``err`` event as a cancellation.
FIELD = "cancelled"

#: KEYS: marker, stream; ARGV: ttl, reason, channel, request id. 1 if this call cancelled it.
CANCEL = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('XADD', KEYS[2], '*', 't', 'err', 'd', ARGV[2], 'cancelled', '1')
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""


def _args(request_id: str, ttl_s: int) -> tuple[list[str], list[Any]]:
    return [keys.cancel(request_id), keys.stream(request_id)], [ttl_s, REASON, keys.cancels(), request_id]


def cancel(client: Redis, request_id: str, ttl_s: int) -> bool:
    """Cancel a request (blocking client); False if it was cancelled before."""
    names, args = _args(request_id, ttl_s)
    return bool(client.eval(CANCEL, len(names), *names, *args))  # type: ignore[no-untyped-call]


async def acancel(client: redis.asyncio.Redis, request_id: str, ttl_s: int) -> bool:  # type: ignore[type-arg]
    """The same from an asyncio client (the gateway)."""
    names, args = _args(request_id, ttl_s)
    return bool(await client.eval(CANCEL, len(names), *names, *args))  # type: ignore[no-untyped-call]


def cancelled(fields: dict[str, str]) -> bool:
    """Is this stream event the end of a cancelled request?"""
    return fields.get("t") == "err" and fields.get(FIELD) == "1"
