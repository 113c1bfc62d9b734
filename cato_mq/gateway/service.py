"""One request through the gateway: checks, submit, then the stream or the whole answer.

Everything that can refuse a request does so before ``submit`` (nothing is enqueued for a
refused request): the key, the body, the model, the SLA headers, the prompt's size in
characters (``CATO_MAX_PROMPT_CHARS``) and in the pool's tokens (its ``max_model_len``), and
a live replica in the pool. The SLA clock starts when the request arrived
(``submit(arrived_at=...)``). ``submit`` publishes through Celery's synchronous producer, so
it runs on a small fixed pool of threads; streaming is asynchronous (``streams``).

A client that hangs up, or closes the stream, cancels the request end to end
(``cato_mq.state.cancel``); so does a request that sent nothing for ``CATO_GATEWAY_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
import redis.asyncio
from kombu.exceptions import OperationalError
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cato_mq.client import Overloaded, submit
from cato_mq.gateway import errors
from cato_mq.gateway.models import Catalog, Pool
from cato_mq.gateway.responses import DONE, EventStream, Shape, sse
from cato_mq.gateway.streams import Failed, StreamHub, Subscription, follow
from cato_mq.schemas import DEFAULT_MAX_TOKENS, MAX_SLA_S, SLA, CodingTask, Kind, Result
from cato_mq.settings import Settings
from cato_mq.state import cancel, keys, registry
from cato_mq.state.transport import OutOfMemoryError

log = logging.getLogger("cato_mq.gateway")
#: Threads that publish requests (Celery's producer blocks); a burst queues behind them.
SUBMIT_THREADS = 4
#: How long one read of a pool's registry answers "is a replica live?", in heartbeats (the
#: registry itself only notices a dead replica after three).
LIVE_CACHE_BEATS = 1.0
#: ``x-slo-*`` headers: name -> the SLA metric it sets (llm-d's names).
SLO_HEADERS = {"x-slo-ttft-ms": "ttft", "x-slo-e2e-ms": "e2e"}


class Service:
    def __init__(self, settings: Settings, catalog: Catalog, client: redis.asyncio.Redis) -> None:  # type: ignore[type-arg]
        self.settings, self.catalog, self.redis = settings, catalog, client
        self.hub = StreamHub(client)
        self.executor = ThreadPoolExecutor(SUBMIT_THREADS, thread_name_prefix="gateway-submit")
        self._live: dict[str, tuple[float, int]] = {}
        self._reading: dict[str, asyncio.Future[dict[str, str]]] = {}  # one registry read per pool at a time
        self._background: set[asyncio.Task[Any]] = set()
        #: a request body may hold the prompt with every character escaped (\\uXXXX twice)
        self.max_body_bytes = 12 * settings.max_prompt_chars + (1 << 20)

    # --- checks -------------------------------------------------------------------------

    def sla(self, headers: Mapping[str, str]) -> SLA | None:
        given = [(h, m) for h, m in SLO_HEADERS.items() if h in headers]
        if len(given) > 1:
            raise errors.invalid("send one of x-slo-ttft-ms and x-slo-e2e-ms: a request has one SLA",
                                 param="x-slo-e2e-ms")
        if not given:
            return None
        name, metric = given[0]
        try:
            ms = float(headers[name])
        except ValueError:
            raise errors.invalid(f"{name} must be a number of milliseconds", param=name) from None
        if not 0 < ms <= MAX_SLA_S * 1000:
            raise errors.invalid(f"{name} must be above 0 and at most {MAX_SLA_S * 1000:.0f}", param=name)
        return SLA.model_validate({"metric": metric, "seconds": ms / 1000})

    async def fits(self, pool: Pool, prompt: str, max_tokens: int) -> None:
        limit = self.settings.max_prompt_chars
        if len(prompt) > limit:
            raise errors.too_large(f"prompt of {len(prompt)} characters; the limit is {limit} characters "
                                   f"(CATO_MAX_PROMPT_CHARS)")
        if len(prompt) + 1 + max_tokens <= pool.max_model_len:
            return  # a token is at least a character: no need to count
        tokens = await asyncio.to_thread(pool.count_tokens, prompt) if pool.tokenizer else pool.count_tokens(prompt)
        if tokens + max_tokens > pool.max_model_len:
            raise errors.too_large(f"prompt of {tokens} tokens + max_tokens {max_tokens} exceeds the limit of pool "
                                   f"{pool.name!r}: max_model_len {pool.max_model_len}")

    async def live_replicas(self, pool: str) -> int:
        """Replicas of ``pool`` taking work; raises ``redis`` errors when Redis is away."""
        now = time.monotonic()
        hit = self._live.get(pool)
        if hit is not None and now - hit[0] < LIVE_CACHE_BEATS * self.settings.heartbeat_s:
            return hit[1]
        read = self._reading.get(pool)  # a burst shares the read in flight
        if read is None:
            read = self._reading[pool] = asyncio.ensure_future(self.redis.hgetall(keys.replicas(pool)))
            read.add_done_callback(lambda _: self._reading.pop(pool, None))
        entries = registry.parse_all(await asyncio.shield(read))
        stale = registry.stale_after(self.settings.heartbeat_s)
        live = sum(e.serving(time.time(), stale) for e in entries.values())
        self._live[pool] = (now, live)
        return live

    async def require_replica(self, pool: str) -> None:
        try:
            live = await self.live_replicas(pool)
        except (redis.RedisError, OSError) as exc:
            raise errors.unavailable(f"Redis is unreachable: {exc}") from None
        if not live:
            raise errors.unavailable(f"no live replica in pool {pool!r} yet; retry shortly")

    # --- a request ----------------------------------------------------------------------

    async def run(
        self, request: Request, arrived: float, pool: Pool, kind: Kind, prompt: str, body: Any, chat: bool,
        max_tokens: int | None,
    ) -> Response:
        headers = request.headers
        budget = max_tokens or DEFAULT_MAX_TOKENS[kind]
        await self.fits(pool, prompt, budget)
        fields: dict[str, Any] = {
            "kind": kind, "prompt": prompt, "pool": pool.name, "sla": self.sla(headers), "max_tokens": budget,
            "temperature": body.temperature, "top_p": body.top_p, "seed": body.seed, "stop": body.stops,
            "raw": True, "language": headers.get("x-cato-language", "python"),
            "target_language": headers.get("x-cato-target-language"),
        }
        try:
            task = CodingTask.model_validate(fields)
        except ValidationError as exc:
            raise errors.validation(exc) from None
        await self.require_replica(pool.name)
        loop = asyncio.get_running_loop()
        try:
            handle = await loop.run_in_executor(self.executor, lambda: submit(task, arrived_at=arrived))
        except Overloaded as exc:
            raise errors.overloaded(str(exc), max(1, math.ceil(exc.retry_after_s))) from None
        except OutOfMemoryError as exc:  # maxmemory under noeviction: refused, not lost
            raise errors.unavailable(str(exc)) from None
        except (redis.RedisError, OperationalError, OSError) as exc:
            raise errors.unavailable(f"Redis is unreachable: {exc}") from None
        rid = handle.request_id
        sub = self.hub.open(rid)
        shape = Shape(chat, rid, body.model, int(arrived), pool.name)
        if body.stream:
            return self._stream(rid, sub, shape, body.include_usage)
        return await self._whole(request, rid, sub, shape)

    def cancel_later(self, request_id: str) -> None:
        """Cancel a request from wherever (a ``finally`` under cancellation may not await)."""
        task = asyncio.get_running_loop().create_task(self._cancel(request_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _cancel(self, request_id: str) -> None:
        try:
            await cancel.acancel(self.redis, request_id, self.settings.result_ttl_s)
        except (redis.RedisError, OSError) as exc:
            log.warning("could not cancel %s: %s", request_id, exc)

    def _stream(self, rid: str, sub: Subscription, shape: Shape, include_usage: bool) -> Response:
        state = {"ended": False}

        async def body() -> AsyncIterator[bytes]:
            if shape.chat:
                yield sse(shape.chunk(None, role=True))
            try:
                async for item in follow(sub, self.settings.gateway_timeout_s):
                    if isinstance(item, str):
                        yield sse(shape.chunk(item))
                        continue
                    state["ended"] = True
                    yield sse(shape.last(item))
                    if include_usage:
                        yield sse(shape.usage_chunk(item))
            except (Failed, TimeoutError) as exc:
                state["ended"] = isinstance(exc, Failed)
                yield sse(self._failure(exc).body())
            yield DONE

        def closed() -> None:
            self.hub.close_sub(sub)
            if not state["ended"]:
                self.cancel_later(rid)

        return EventStream(body(), {"x-cato-request-id": rid}, on_close=closed)

    async def _whole(self, request: Request, rid: str, sub: Subscription, shape: Shape) -> Response:
        async def collect() -> Result:
            async for item in follow(sub, self.settings.gateway_timeout_s):
                if isinstance(item, Result):
                    return item
            raise AssertionError("unreachable: follow ends with a Result")

        async def hangup() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass

        answer, listener = asyncio.ensure_future(collect()), asyncio.ensure_future(hangup())
        try:
            await asyncio.wait([answer, listener], return_when=asyncio.FIRST_COMPLETED)
        finally:
            listener.cancel()
            self.hub.close_sub(sub)
            if not answer.done():  # the client hung up, or we are shutting down
                answer.cancel()
                self.cancel_later(rid)
        try:
            result = answer.result()
        except (Failed, TimeoutError) as exc:
            if isinstance(exc, TimeoutError):
                self.cancel_later(rid)
            error = self._failure(exc)
            error.headers["x-cato-request-id"] = rid
            return error.response()
        except asyncio.CancelledError:
            return Response(status_code=499, headers={"x-cato-request-id": rid})
        return JSONResponse(shape.whole(result), headers={"x-cato-request-id": rid})

    def _failure(self, exc: Exception) -> errors.ApiError:
        if isinstance(exc, TimeoutError):
            waited = f"{self.settings.gateway_timeout_s:g} s (CATO_GATEWAY_TIMEOUT_S)"
            return errors.ApiError(504, f"no answer for {waited}; the request was cancelled", type_="timeout",
                                   code="timeout")
        if isinstance(exc, Failed) and exc.cancelled:
            return errors.ApiError(499, str(exc), type_="cancelled", code="cancelled")
        return errors.ApiError(500, str(exc), type_="server_error", code="request_failed")

    async def close(self, grace_s: float = 5.0) -> None:
        if self._background:
            await asyncio.wait(list(self._background), timeout=grace_s)
        await self.hub.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
