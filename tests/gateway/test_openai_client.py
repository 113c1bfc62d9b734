"""The official ``openai`` package, unchanged, against ``cato-mq gateway`` and a sim worker."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
import redis

from cato_mq.gateway.prompts import fill_in_the_middle
from cato_mq.state import keys
from tests.gateway.conftest import Gateway

PREFIX = "def fib(n):\n    a, b = 0, 1\n    "
SUFFIX = "\n    return a\n"


def client(gw: Gateway, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base, api_key=key or gw.key, max_retries=0, timeout=60)


def result_of(rds: redis.Redis, request_id: str) -> dict[str, Any]:
    """The request's Result as the worker wrote it in its stream."""
    for _, fields in rds.xrange(keys.stream(request_id)):
        if fields["t"] == "end":
            return dict(json.loads(fields["d"]))
    raise AssertionError(f"no end event for {request_id}")


def llm_node(result: dict[str, Any]) -> dict[str, Any]:
    return next(n for n in result["nodes"] if n["step"] == "llm")


def test_models_lists_every_pool_and_kind_with_its_context(gateway: Gateway, fleet: redis.Redis) -> None:
    models = client(gateway).models.list().data
    ids = [m.id for m in models]
    assert ids[:5] == ["default", "default/completion", "default/generation", "default/summarization",
                       "default/translation"]
    assert "other/translation" in ids
    assert all((m.model_extra or {})["max_model_len"] == 4096 for m in models)  # the sim engine's context


@pytest.mark.parametrize("stream", [False, True])
def test_completion_without_suffix_sends_the_prompt_as_it_is(
    gateway: Gateway, fleet: redis.Redis, stream: bool
) -> None:
    c = client(gateway)
    if stream:
        chunks = list(c.completions.create(model="default", prompt=PREFIX, max_tokens=12, stream=True,
                                           stream_options={"include_usage": True}))
        text = "".join(ch.choices[0].text for ch in chunks if ch.choices)
        assert chunks[-2].choices[0].finish_reason == "length"
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        usage, cato = chunks[-1].usage, (chunks[-2].model_extra or {})["cato"]
    else:
        raw = c.completions.with_raw_response.create(model="default", prompt=PREFIX, max_tokens=12)
        out = raw.parse()
        assert raw.headers["x-cato-request-id"] == out.id.removeprefix("cmpl-")
        text, usage, cato = out.choices[0].text, out.usage, (out.model_extra or {})["cato"]
        assert out.choices[0].finish_reason == "length" and out.object == "text_completion"
    assert usage is not None and usage.completion_tokens == 12 and usage.prompt_tokens > 0
    assert cato["kind"] == "completion" and cato["tier_path"] and isinstance(cato["met_sla"], bool)
    assert cato["ttft_s"] is not None and 0 < cato["ttft_s"] <= cato["e2e_s"]
    result = result_of(fleet, cato["request_id"])
    assert result["text"] == text != ""
    assert llm_node(result)["detail"]["prompt_chars"] == len(PREFIX)  # no framing, no retrieved context


@pytest.mark.parametrize("stream", [False, True])
def test_completion_with_suffix_renders_the_pools_fim_template(
    gateway: Gateway, fleet: redis.Redis, stream: bool
) -> None:
    c = client(gateway)
    if stream:
        chunks = list(c.completions.create(model="default", prompt=PREFIX, suffix=SUFFIX, max_tokens=8, stream=True))
        text = "".join(ch.choices[0].text for ch in chunks)
        request_id = chunks[0].id.removeprefix("cmpl-")
    else:
        out = c.completions.create(model="default", prompt=PREFIX, suffix=SUFFIX, max_tokens=8)
        text, request_id = out.choices[0].text, out.id.removeprefix("cmpl-")
    result = result_of(fleet, request_id)
    assert result["text"] == text != ""
    rendered = fill_in_the_middle("plain", PREFIX, SUFFIX)
    assert rendered == f"<prefix>{PREFIX}<suffix>{SUFFIX}<middle>"
    assert llm_node(result)["detail"]["prompt_chars"] == len(rendered)


@pytest.mark.parametrize("stream", [False, True])
def test_chat_streams_and_answers(gateway: Gateway, fleet: redis.Redis, stream: bool) -> None:
    c = client(gateway)
    messages: Any = [{"role": "system", "content": "You write Python."}, {"role": "user", "content": "fib please"}]
    if stream:
        chunks = list(c.chat.completions.create(model="default", messages=messages, max_tokens=10, stream=True))
        assert chunks[0].choices[0].delta.role == "assistant"
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks)
        assert chunks[-1].choices[0].finish_reason == "length"
        request_id = chunks[0].id.removeprefix("chatcmpl-")
    else:
        out = c.chat.completions.create(model="default", messages=messages, max_tokens=10)
        assert out.object == "chat.completion" and out.choices[0].message.role == "assistant"
        assert out.usage is not None and out.usage.completion_tokens == 10
        text, request_id = out.choices[0].message.content or "", out.id.removeprefix("chatcmpl-")
    result = result_of(fleet, request_id)
    assert result["text"] == text != ""
    assert result["kind"] == "generation" and [n["step"] for n in result["nodes"]] == ["retrieve", "llm", "validate"]
    fallback = "<|system|>\nYou write Python.\n<|user|>\nfib please\n<|assistant|>\n"
    assert llm_node(result)["detail"]["prompt_chars"] == len(fallback)


def test_stop_ends_generation_on_the_engine(gateway: Gateway, fleet: redis.Redis) -> None:
    # the simulated engine draws words from the prompt and a few keywords, "return" among them
    out = client(gateway).completions.create(model="default", prompt="alpha beta", max_tokens=400,
                                             stop=["return", "\n"])
    assert out.choices[0].finish_reason == "stop"
    assert "return" not in out.choices[0].text and "\n" not in out.choices[0].text
    assert out.usage is not None and out.usage.completion_tokens < 400  # the engine stopped, not the text


def test_kind_and_sla_come_from_the_alias_and_the_headers(gateway: Gateway, fleet: redis.Redis) -> None:
    c = client(gateway)
    out = c.completions.create(model="default/summarization", prompt="def f(): pass", max_tokens=4)
    cato = (out.model_extra or {})["cato"]
    assert cato["kind"] == "summarization" and cato["sla"] == {"metric": "e2e", "seconds": 10.0}
    out = c.completions.create(model="default", prompt="def f(): pass", max_tokens=4,
                               extra_headers={"x-cato-kind": "generation", "x-slo-ttft-ms": "750"})
    cato = (out.model_extra or {})["cato"]
    assert cato["kind"] == "generation" and cato["sla"] == {"metric": "ttft", "seconds": 0.75}
    with pytest.raises(openai.BadRequestError) as err:
        c.completions.create(model="default/completion", prompt="x", extra_headers={"x-cato-kind": "generation"})
    assert err.value.body["param"] == "x-cato-kind"  # type: ignore[index]


def enqueued(rds: redis.Redis) -> tuple[int, int]:
    """Messages queued in every tier queue, and the requests' streams."""
    queued = sum(rds.llen(q) for p in ("default", "other") for t in keys.TIERS for q in keys.queue_lists(p, t))
    return queued, len(rds.keys("cato:stream:*"))


@pytest.mark.parametrize(
    ("call", "status", "error_type", "code"),
    [
        (lambda c: c.completions.create(model="no-such-model", prompt="x"), 404, "invalid_request_error",
         "model_not_found"),
        (lambda c: c.completions.create(model="default", prompt="x" * 70_000), 413, "invalid_request_error",
         "context_length_exceeded"),
        (lambda c: c.completions.create(model="default", prompt="x" * 16_000, max_tokens=200), 413,
         "invalid_request_error", "context_length_exceeded"),
        (lambda c: c.completions.create(model="default", prompt="x", n=2), 400, "invalid_request_error",
         "unsupported_parameter"),
        (lambda c: c.completions.create(model="default", prompt="x", temperature=3), 400, "invalid_request_error",
         None),
        (lambda c: c.chat.completions.create(model="default", messages=[]), 400, "invalid_request_error", None),
        (lambda c: c.completions.create(model="other", prompt="x"), 503, "service_unavailable", "no_replica"),
    ],
    ids=["unknown-model", "over-chars", "over-context", "n", "temperature", "no-messages", "no-replica"],
)
def test_refusals_have_openais_shape_and_enqueue_nothing(
    gateway: Gateway, fleet: redis.Redis, call: Any, status: int, error_type: str, code: str | None
) -> None:
    before = enqueued(fleet)
    with pytest.raises(openai.APIStatusError) as err:
        call(client(gateway))
    assert err.value.status_code == status
    body = err.value.body
    assert isinstance(body, dict) and body["type"] == error_type and body["code"] == code and body["message"]
    if status == 413:
        assert "65536" in body["message"] or "max_model_len 4096" in body["message"]  # the limit, named
    if status == 503:
        assert err.value.response.headers["retry-after"].isdigit()
    assert enqueued(fleet) == before == (0, before[1])


@pytest.mark.parametrize("key", ["sk-wrong", ""])
def test_a_bad_or_missing_key_is_refused(gateway: Gateway, fleet: redis.Redis, key: str) -> None:
    before = enqueued(fleet)
    with pytest.raises(openai.AuthenticationError) as err:
        client(gateway, key=key or "-").completions.create(model="default", prompt="x")
    assert err.value.status_code == 401
    body = err.value.body
    assert isinstance(body, dict) and body["type"] == "invalid_request_error" and body["code"] == "invalid_api_key"
    assert enqueued(fleet) == before
    # the second key of the file works too
    assert client(gateway, key="sk-other").models.list().data
