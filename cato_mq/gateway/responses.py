"""OpenAI response bodies and Server-Sent Events, and the streaming response that hears a hang-up.

Completions are ``text_completion`` objects (chunks: the same object with a piece of
``text``); chat answers are ``chat.completion`` objects (chunks: ``chat.completion.chunk``
with a ``delta``). Every body ends with what the request met: the non-streamed ones carry
``usage`` and a ``cato`` object (SLA verdict, TTFT, E2E, the tier path); a stream's last
choice chunk carries ``cato``, then (``stream_options.include_usage``) a chunk with
``usage`` and no choices, as OpenAI sends it, then ``data: [DONE]``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from cato_mq.schemas import Result

DONE = b"data: [DONE]\n\n"
#: What a stream's response headers say besides its request id.
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


def llm_detail(result: Result) -> dict[str, object]:
    """What the engine reported of the streamed LLM node (token counts, finish reason)."""
    return next((n.detail for n in reversed(result.nodes) if n.step == "llm"), {})


def usage(result: Result) -> dict[str, int]:
    d = llm_detail(result)
    prompt, completion = int(str(d.get("prompt_tokens", 0))), int(str(d.get("completion_tokens", 0)))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def finish_reason(result: Result) -> str:
    reason = llm_detail(result).get("finish_reason")
    return "length" if reason == "length" else "stop"


def cato(result: Result, pool: str) -> dict[str, Any]:
    return {
        "request_id": result.request_id, "pool": pool, "kind": result.kind.value, "met_sla": result.met_sla,
        "sla": {"metric": result.sla.metric, "seconds": result.sla.seconds},
        "ttft_s": result.ttft_s, "e2e_s": result.e2e_s, "tier_path": [n.tier for n in result.nodes],
        "nodes": [{"step": n.step, "tier": n.tier, "worker": n.worker, "attempt": n.attempt} for n in result.nodes],
    }


class Shape:
    """The bodies of one endpoint: completions (``chat=False``) or chat."""

    def __init__(self, chat: bool, request_id: str, model: str, created: int, pool: str) -> None:
        self.chat, self.model, self.created, self.pool = chat, model, created, pool
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{request_id}"

    def _head(self, chunk: bool) -> dict[str, Any]:
        kind = ("chat.completion.chunk" if chunk else "chat.completion") if self.chat else "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def whole(self, result: Result) -> dict[str, Any]:
        reason = finish_reason(result)
        choice: dict[str, Any] = (
            {"index": 0, "message": {"role": "assistant", "content": result.text}, "logprobs": None,
             "finish_reason": reason}
            if self.chat else {"index": 0, "text": result.text, "logprobs": None, "finish_reason": reason}
        )
        return {**self._head(False), "choices": [choice], "usage": usage(result), "cato": cato(result, self.pool)}

    def chunk(self, text: str | None, finish: str | None = None, role: bool = False) -> dict[str, Any]:
        if self.chat:
            delta: dict[str, str] = {"role": "assistant", "content": ""} if role else {}
            if text:
                delta["content"] = text
            choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        return {**self._head(True), "choices": [choice]}

    def last(self, result: Result) -> dict[str, Any]:
        return {**self.chunk(None, finish_reason(result)), "cato": cato(result, self.pool)}

    def usage_chunk(self, result: Result) -> dict[str, Any]:
        return {**self._head(True), "choices": [], "usage": usage(result)}


class EventStream(StreamingResponse):
    """Starlette's streaming response, always listening for the client's hang-up (whatever
    ASGI version the server reports): the stream is cancelled at once, and the body's
    ``finally`` cancels the request, even while nothing is being written (a queued request)."""

    def __init__(self, content: Any, headers: dict[str, str], on_close: Callable[[], None] | None = None) -> None:
        super().__init__(content, headers={**SSE_HEADERS, **headers}, media_type="text/event-stream")
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def run(func: Callable[[], Any]) -> None:
                    await func()
                    group.cancel_scope.cancel()

                group.start_soon(run, partial(self.stream_response, send))
                await run(partial(self.listen_for_disconnect, receive))
        except OSError:
            pass  # the client went away mid-write: the body's finally cancelled the request
        finally:
            if self._on_close is not None:
                self._on_close()
