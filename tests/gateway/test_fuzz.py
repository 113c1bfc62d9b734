"""Hypothesis against the running gateway: whatever body arrives, the answer is an OpenAI-shaped
error or a refusal for want of a replica, the gateway stays up, and nothing reaches a queue."""

from __future__ import annotations

import json
from typing import Any

import httpx
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cato_mq.state import keys
from tests.gateway.conftest import Gateway

FIELDS = ["model", "prompt", "suffix", "max_tokens", "temperature", "top_p", "stop", "stream", "seed", "user",
          "n", "messages", "stream_options", "best_of", "logprobs", "echo", "tools"]
#: pool "other" is configured but has no replica: a body that passes every check ends in 503
MODELS = st.sampled_from(["other", "other/completion", "other/translation", "no-such", "", "default/bogus"])
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant", "tool", "x"]),
                                 "content": st.text(max_size=40) | VALUES})
BODIES = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=12), VALUES, max_size=8).flatmap(
    lambda d: st.fixed_dictionaries({"model": MODELS, "messages": st.lists(MESSAGE, max_size=3)}).map(
        lambda extra: {**d, **extra}))


def queued(rds: redis.Redis) -> int:
    lists = [q for p in ("default", "other") for t in keys.TIERS for q in keys.queue_lists(p, t)]
    return sum(rds.llen(q) for q in lists) + len(rds.keys("cato:stream:*"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES | st.binary(max_size=200).map(lambda b: {"raw": b}),
       path=st.sampled_from(["/v1/completions", "/v1/chat/completions"]))
def test_any_body_gets_a_shaped_error_and_nothing_is_queued(gateway: Gateway, redis_url: str,
                                                            body: dict[str, Any], path: str) -> None:
    rds = redis.Redis.from_url(redis_url, decode_responses=True)
    before = queued(rds)
    raw = body["raw"] if "raw" in body else json.dumps(body).encode()
    answer = httpx.post(gateway.url + path, content=raw, timeout=30,
                        headers={"authorization": f"Bearer {gateway.key}", "content-type": "application/json"})
    assert answer.status_code in (400, 404, 413, 503), (answer.status_code, answer.text[:300])
    error = answer.json()["error"]
    assert isinstance(error["message"], str) and error["message"] and "type" in error and "code" in error
    assert queued(rds) == before
    rds.close()


def test_the_gateway_is_still_up_after_the_fuzzing(gateway: Gateway) -> None:
    assert gateway.proc.poll() is None
    assert httpx.get(f"{gateway.url}/health", timeout=10).status_code in (200, 503)
