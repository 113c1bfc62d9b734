"""Hypothesis drives raw queue messages: whatever bytes sit on a queue, the screen says
Poison or hands kombu a well-formed envelope, and a consumer on the real transport buries
or delivers every item and keeps consuming."""

from __future__ import annotations

import base64
import json
from typing import Any

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kombu import Connection, Consumer, Queue

from cato_mq.state import keys
from cato_mq.state.dead import KINDS, Poison
from cato_mq.state.envelope import screen

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def near_envelopes() -> st.SearchStrategy[bytes]:
    """Envelopes with each part possibly wrong: what a broken or hostile publisher sends."""
    body = st.one_of(
        JSON.map(lambda v: base64.b64encode(json.dumps(v).encode()).decode()),
        st.text(max_size=30),
        st.just(base64.b64encode(b'[[], {}, {}]').decode()),
    )
    headers = st.one_of(
        st.fixed_dictionaries({"task": st.sampled_from(["cato.node", "os.system"]), "id": st.text(max_size=40)}),
        JSON,
    )
    envelope = st.fixed_dictionaries({
        "body": body | JSON,
        "content-type": st.sampled_from(["application/json", "application/x-python-serialize", None]),
        "headers": headers,
        "properties": st.fixed_dictionaries({"body_encoding": st.sampled_from(["base64", "utf-8", "rot13"]),
                                             "delivery_info": st.just({})}) | JSON,
    })
    return envelope.map(lambda e: json.dumps(e).encode())


def check(raw: bytes) -> dict[str, Any] | None:
    try:
        payload = screen(raw)
    except Poison as exc:
        assert exc.kind in KINDS and exc.reason and "\n" not in exc.reason
        return None
    assert isinstance(payload["properties"], dict) and isinstance(payload["headers"]["id"], str)
    return payload


@given(st.binary(max_size=300) | near_envelopes())
@settings(max_examples=400, deadline=None)
def test_the_screen_refuses_with_a_kind_or_passes_a_sound_envelope(raw: bytes) -> None:
    check(raw)


@given(st.lists(st.binary(max_size=400) | near_envelopes(), min_size=1, max_size=6))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_consumer_buries_or_delivers_every_item_and_goes_on(
    rds: redis.Redis, redis_url: str, items: list[bytes]
) -> None:
    rds.flushdb()
    for item in items:
        rds.lpush("fuzz", item)
    rds.lpush("fuzz", json.dumps({  # a sound message last: consuming must reach it
        "body": base64.b64encode(b"[[1], {}, {}]").decode(), "content-type": "application/json",
        "headers": {"task": "t", "id": "sound"}, "properties": {"body_encoding": "base64", "delivery_info": {}},
    }))
    got: list[str] = []

    def take(_body: object, message: Any) -> None:
        got.append(message.headers["id"])
        message.ack()

    conn = Connection(redis_url, transport="cato_mq.state.transport:Transport")
    with conn, conn.channel() as channel, Consumer(channel, [Queue("fuzz")], callbacks=[take]):
        while "sound" not in got:
            conn.drain_events(timeout=5)
    assert got[-1] == "sound" and rds.llen("fuzz") == 0
    assert len(got) + rds.xlen(keys.dead()) == len(items) + 1  # each item delivered or buried
    assert rds.hlen(keys.UNACKED) == 0  # acked or buried: none waits to be redelivered
