"""The gateway's ASGI application: ``build(settings)`` returns it, ``serve`` runs it on uvicorn.

Routes: ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions`` (an API
key when keys are configured), ``GET /health`` and ``GET /metrics`` (none). Shutting down (SIGTERM, SIGINT):
uvicorn stops accepting connections and lets open streams end, for up to
``GRACEFUL_S``; a stream still open then is closed, and its request cancelled.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import redis
import redis.asyncio
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cato_mq.gateway import auth, errors
from cato_mq.gateway.models import Catalog
from cato_mq.gateway.prompts import fill_in_the_middle, render_chat
from cato_mq.gateway.schemas import ChatRequest, CompletionRequest, refuse_unsupported
from cato_mq.gateway.service import Service
from cato_mq.schemas import Kind
from cato_mq.settings import Settings

#: Redis connections of one gateway process: the stream reader's, the doorbell's, and
#: short commands (replica checks, cancels), which queue for one when all are busy.
REDIS_CONNECTIONS = 32
SWITCH_INTERVAL_S = 0.0005
#: Seconds open streams get to end after a shutdown signal (compose allows the gateway 30).
GRACEFUL_S = 25


async def _body(request: Request, service: Service) -> dict[str, Any]:
    limit = service.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise errors.too_large(f"request body of {declared} bytes; the limit is {limit} bytes", param="body")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.too_large(f"request body over {limit} bytes", param="body")
        chunks.append(chunk)
    try:
        data = json.loads(b"".join(chunks))
    except ValueError as exc:
        raise errors.invalid(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise errors.invalid("the body must be a JSON object")
    return data


def _parse(model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise errors.validation(exc) from None


async def completions(request: Request) -> Response:
    arrived = time.time()
    service: Service = request.app.state.service
    auth.check(request, request.app.state.keys)
    body: CompletionRequest = _parse(CompletionRequest, await _body(request, service))
    refuse_unsupported(body)
    pool, kind = service.catalog.resolve(body.model, Kind.completion, request.headers.get("x-cato-kind"))
    prompt = body.text() if body.suffix is None else fill_in_the_middle(pool.fim, body.text(), body.suffix)
    return await service.run(request, arrived, pool, kind, prompt, body, False, body.max_tokens)


async def chat_completions(request: Request) -> Response:
    arrived = time.time()
    service: Service = request.app.state.service
    auth.check(request, request.app.state.keys)
    body: ChatRequest = _parse(ChatRequest, await _body(request, service))
    refuse_unsupported(body)
    pool, kind = service.catalog.resolve(body.model, Kind.generation, request.headers.get("x-cato-kind"))
    prompt = render_chat(body.rendered_messages(), pool.tokenizer)
    return await service.run(request, arrived, pool, kind, prompt, body, True, body.output_budget)


async def models(request: Request) -> Response:
    auth.check(request, request.app.state.keys)
    return JSONResponse(request.app.state.service.catalog.listing(request.app.state.started))


async def health(request: Request) -> Response:
    service: Service = request.app.state.service
    try:
        await service.redis.ping()
        pools = {p: await service.live_replicas(p) for p in service.catalog.pools}
    except (redis.RedisError, OSError) as exc:
        return JSONResponse({"status": "unavailable", "redis": False, "error": str(exc)}, status_code=503,
                            headers={"Retry-After": str(errors.RETRY_AFTER_S)})
    ok = all(pools.values())
    body = {"status": "ok" if ok else "unavailable", "redis": True, "live_replicas": pools,
            "open_streams": service.hub.open_streams}
    return JSONResponse(body, status_code=200 if ok else 503,
                        headers={} if ok else {"Retry-After": str(errors.RETRY_AFTER_S)})


def metrics(request: Request) -> Response:
    """Prometheus' scrape: the fleet's series from Redis (``cato_mq.metrics``), with no API
    key, as Prometheus scrapes without one. Sync: Starlette runs it on its thread pool."""
    from cato_mq.app import redis_client
    from cato_mq.metrics.serve import exposition

    try:
        body, content_type = exposition(redis_client(), request.app.state.service.settings)
    except (redis.RedisError, OSError) as exc:  # Prometheus records the scrape as failed
        return Response(f"Redis out of reach: {exc}\n", status_code=503, media_type="text/plain")
    return Response(body, media_type=content_type)


def build(settings: Settings, tokenizers: bool = True) -> Starlette:
    """The gateway for ``settings``. Refuses (ValueError) a keys file that is missing or empty."""
    keys = auth.load_keys(settings.api_keys_file)
    catalog = Catalog(settings, tokenizers)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # a burst of requests waits for a connection rather than failing past the pool's size
        pool: Any = redis.asyncio.BlockingConnectionPool.from_url(
            settings.redis_url, decode_responses=True, max_connections=REDIS_CONNECTIONS, timeout=10)
        client = redis.asyncio.Redis(connection_pool=pool)
        service = Service(settings, catalog, client)
        app.state.service, app.state.keys, app.state.started = service, keys, int(time.time())
        service.hub.start()
        try:
            yield
        finally:
            await service.close()
            await client.aclose()  # type: ignore[attr-defined]

    routes = [
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    handlers = {errors.ApiError: errors.handle, HTTPException: errors.http}
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)


def serve(settings: Settings, host: str, port: int, log_level: str = "info") -> int:
    """Run the gateway until SIGTERM or SIGINT (uvicorn's graceful shutdown)."""
    import sys

    import uvicorn

    # the publish runs on helper threads (Celery's producer blocks): hand the GIL between
    # them and the event loop within 0.5 ms rather than Python's default 5 ms
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    app = build(settings)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level.lower(), lifespan="on",
                            timeout_graceful_shutdown=GRACEFUL_S, proxy_headers=False, access_log=False)
    uvicorn.Server(config).run()
    return 0
