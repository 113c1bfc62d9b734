"""Raw HTTP against the gateway: an editor's exact bytes, hang-ups that cancel, many streams at once."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from cato_mq import CodingTask, RequestCancelled, submit
from cato_mq.state import keys
from tests.conftest import WorkerFactory
from tests.gateway.conftest import Gateway

#: What Continue's autocomplete posts to an OpenAI-compatible /v1/completions for a
#: Qwen-coder model: its own FIM rendering, its stop list, and zero penalties.
CONTINUE_BODY = (
    b'{"model":"default","max_tokens":24,"temperature":0.01,"top_p":1,"frequency_penalty":0,'
    b'"presence_penalty":0,"stop":["<|endoftext|>","<|fim_prefix|>","<|fim_middle|>","<|fim_suffix|>",'
    b'"<|fim_pad|>","<|repo_name|>","<|file_sep|>","<|im_start|>","<|im_end|>","\\n\\n","\\r\\n\\r\\n",'
    b'"/src/","#- coding: utf-8","```"],"stream":true,'
    b'"prompt":"<|fim_prefix|>def fib(n):\\n    a, b = 0, 1\\n    <|fim_suffix|>\\n    return a<|fim_middle|>"}'
)


def sse_events(lines: Iterator[str]) -> Iterator[str]:
    """The ``data:`` payloads of a Server-Sent Events stream, in order."""
    for line in lines:
        if line.startswith("data: "):
            yield line[len("data: "):]


def headers(gw: Gateway) -> dict[str, str]:
    return {"authorization": f"Bearer {gw.key}", "content-type": "application/json"}


def stream_events(rds: redis.Redis, request_id: str) -> list[dict[str, str]]:
    return [fields for _, fields in rds.xrange(keys.stream(request_id))]


def test_continues_autocomplete_body_streams_back_as_sse(gateway: Gateway, workers: WorkerFactory,
                                                         rds: redis.Redis) -> None:
    workers("-c", "4")
    with httpx.stream("POST", f"{gateway.base}/completions", content=CONTINUE_BODY, headers=headers(gateway),
                      timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        rid = r.headers["x-cato-request-id"]
        payloads = list(sse_events(r.iter_lines()))
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    text = "".join(c["choices"][0]["text"] for c in chunks)
    assert all(c["object"] == "text_completion" and c["id"] == f"cmpl-{rid}" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length") and "cato" in chunks[-1]
    end = next(json.loads(f["d"]) for f in stream_events(rds, rid) if f["t"] == "end")
    assert end["text"] == text != ""
    llm = next(n for n in end["nodes"] if n["step"] == "llm")
    prompt = json.loads(CONTINUE_BODY)["prompt"]
    assert llm["detail"]["prompt_chars"] == len(prompt)  # rendered by the plugin: passed through as sent


def _window_counts(rds: redis.Redis, pool: str = "default") -> dict[str, int]:
    out: dict[str, int] = {}
    for key in rds.keys(f"cato:win:{pool}:*"):
        for field, value in rds.hgetall(key).items():
            out[field] = out.get(field, 0) + int(value)
    return out


def _inflight(rds: redis.Redis) -> int:
    return sum(int(v.split()[0]) for v in rds.hgetall(keys.replicas("default")).values())


def test_hanging_up_mid_stream_aborts_the_engine_request_and_counts_it_cancelled(
    gateway: Gateway, workers: WorkerFactory, rds: redis.Redis
) -> None:
    # a slowed engine: ~60 ms a step, so 2,000 tokens would run for two minutes
    workers("-c", "4", "--time-scale", "10")
    body = {"model": "default", "messages": [{"role": "user", "content": "long answer"}], "max_tokens": 2000,
            "stream": True}
    with httpx.stream("POST", f"{gateway.base}/chat/completions", json=body, headers=headers(gateway),
                      timeout=30) as r:
        rid = r.headers["x-cato-request-id"]
        events = sse_events(r.iter_lines())
        next(events)  # the role chunk
        got = [json.loads(next(events)) for _ in range(3)]
        assert all(g["choices"][0]["delta"].get("content") for g in got)
        assert _inflight(rds) == 1
        began = time.monotonic()
    # the client hung up: within one step the worker aborts the request and frees its slot
    while _inflight(rds) and time.monotonic() - began < 5:
        time.sleep(0.005)
    freed = time.monotonic() - began
    assert _inflight(rds) == 0 and freed < 1.0, f"in-flight count dropped after {freed:.3f} s"
    counts = _window_counts(rds)
    assert counts.get("cancelled") == 1 and "requests" not in counts and "failed" not in counts
    assert rds.hget(keys.cancelled_counts(), "default") == "1"
    assert rds.get(keys.cancel(rid)) == "2"  # counted, once
    time.sleep(0.5)  # nothing more is produced, and nothing later in the chain runs
    events_after = stream_events(rds, rid)
    toks = [e for e in events_after if e["t"] == "tok"]
    assert sum(len(e["d"]) for e in toks) < 2000
    assert [e["n"] for e in events_after if e["t"] == "node"] == ["0"]  # the retrieve node alone: no validate
    assert not any(e["t"] == "end" for e in events_after)
    time.sleep(0.3)
    assert stream_events(rds, rid) == events_after


def test_a_queued_request_cancelled_never_reaches_the_engine(
    gateway: Gateway, workers: WorkerFactory, rds: redis.Redis
) -> None:
    workers("-c", "1", "--time-scale", "10")  # one slot, taken by the first request
    first = submit(CodingTask(kind="summarization", prompt="def busy(): pass", max_tokens=20,
                              sla={"metric": "e2e", "seconds": 60}))
    time.sleep(0.3)
    body = {"model": "default/summarization", "prompt": "def waiting(): pass", "max_tokens": 20}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{gateway.base}/completions", json=body, headers=headers(gateway), timeout=0.5)
    first.result(timeout=30)
    time.sleep(0.5)  # the worker pops the cancelled node and skips it
    streams = [k.removeprefix("cato:stream:") for k in rds.keys("cato:stream:*")]
    waiting = [s for s in streams if s != first.request_id]
    assert len(waiting) == 1
    events = stream_events(rds, waiting[0])
    assert [e["t"] for e in events] == ["err"] and events[0]["cancelled"] == "1"  # no token, no node
    assert rds.hget(keys.cancelled_counts(), "default") == "1"
    queued = sum(rds.llen(q) for t in keys.TIERS for q in keys.queue_lists("default", t))
    assert queued == 0


def test_python_handle_cancel_uses_the_same_path(workers: WorkerFactory, rds: redis.Redis) -> None:
    workers("-c", "2", "--time-scale", "10")
    h = submit(CodingTask(kind="translation", prompt="def f(): pass", target_language="rust", max_tokens=2000,
                          sla={"metric": "e2e", "seconds": 600}))
    pieces = h.stream(timeout=30)
    next(pieces)
    assert h.cancel() is True and h.cancel() is False
    with pytest.raises(RequestCancelled):
        list(pieces)
    # the count is written when the worker sees the cancel; the replica's in-flight figure follows
    # with its next registry write, so wait for both rather than read them at one instant
    until = time.monotonic() + 5
    while (rds.hget(keys.cancelled_counts(), "default") != "1" or _inflight(rds)) and time.monotonic() < until:
        time.sleep(0.01)
    assert rds.hget(keys.cancelled_counts(), "default") == "1"
    assert _inflight(rds) == 0
    assert not any(e["t"] == "node" for e in stream_events(rds, h.request_id))  # no validate after the llm node


def test_a_finished_request_cancelled_late_stays_met_or_missed(workers: WorkerFactory, rds: redis.Redis) -> None:
    workers("-c", "2")
    h = submit(CodingTask(kind="summarization", prompt="def f(): pass", max_tokens=4))
    result = h.result(timeout=30)
    assert h.cancel() is True
    time.sleep(0.3)
    assert h.result(timeout=5) == result  # its end comes first in its stream
    assert rds.hget(keys.cancelled_counts(), "default") is None
    assert _window_counts(rds).get("requests") == 1 and "cancelled" not in _window_counts(rds)


def test_200_concurrent_streams_each_get_their_own_tokens_in_order(
    gateway: Gateway, workers: WorkerFactory, rds: redis.Redis
) -> None:
    workers("-c", "32", device="0")
    workers("-c", "32", device="1")
    n = 200

    async def one(client: httpx.AsyncClient, i: int) -> tuple[int, str, str]:
        body = {"model": "default", "prompt": f"word_{i} word_{i} word_{i}", "max_tokens": 24, "stream": True}
        async with client.stream("POST", f"{gateway.base}/completions", json=body, headers=headers(gateway)) as r:
            assert r.status_code == 200, await r.aread()
            rid = r.headers["x-cato-request-id"]
            text = []
            async for line in r.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    text.append(json.loads(line[6:])["choices"][0]["text"])
            return i, rid, "".join(text)

    async def all_of_them() -> list[tuple[int, str, str]]:
        limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            return await asyncio.gather(*(one(client, i) for i in range(n)))

    results = asyncio.run(all_of_them())
    assert len({rid for _, rid, _ in results}) == n
    for i, rid, text in results:
        assert text, f"stream {i} got nothing"
        assert set(re.findall(r"word_\d+", text)) <= {f"word_{i}"}, f"stream {i} got another stream's words"
        end = next(json.loads(f["d"]) for f in stream_events(rds, rid) if f["t"] == "end")
        assert end["text"] == text  # every token, in order
