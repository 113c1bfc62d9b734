"""Dead letters against real Redis: burial, listing, counting and requeue."""

from __future__ import annotations

import pytest
import redis

from cato_mq.state import keys
from cato_mq.state.dead import MAXLEN, DeadLetters


@pytest.fixture
def raw(rds: redis.Redis, redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)  # bytes, as `cato-mq dead` reads them


def test_bury_keeps_the_message_and_takes_it_off_the_unacked_set(raw: redis.Redis) -> None:
    raw.hset(keys.UNACKED, "tag1", b"[{}, \"\", \"q\"]")
    raw.zadd(keys.UNACKED_INDEX, {"tag1": 1.0})
    letters = DeadLetters(raw)
    letters.bury("shape", "the body must be a list", "default.safe", b"\xffbytes", list_key="default.safe",
                 request="r1", tag="tag1")
    [e] = letters.entries()
    assert (e.kind, e.reason, e.queue, e.list, e.request, e.raw) == (
        "shape", "the body must be a list", "default.safe", "default.safe", "r1", b"\xffbytes")
    assert letters.counts() == {"shape": 1} and raw.ttl(keys.dead_counts()) > 0
    assert not raw.hexists(keys.UNACKED, "tag1") and raw.zcard(keys.UNACKED_INDEX) == 0


def test_requeue_puts_it_back_at_the_head_and_rings(raw: redis.Redis) -> None:
    letters = DeadLetters(raw)
    raw.lpush("default.safe", b"older")
    letters.bury("invalid_state", "unknown pool", "default.safe", b"msg", list_key="default.safe")
    [e] = letters.entries()
    letters.requeue(e.id)
    assert raw.rpop("default.safe") == b"msg"  # the next one a consumer pops
    assert raw.llen(keys.bell("default.safe")) == 1
    assert letters.entries() == []
    assert letters.counts() == {"invalid_state": 1}  # a counter: replaying does not undo it
    with pytest.raises(ValueError, match="no dead letter"):
        letters.requeue(e.id)
    with pytest.raises(ValueError, match="not a dead letter id"):
        letters.requeue("nope")


def test_a_letter_without_its_message_cannot_be_requeued(raw: redis.Redis) -> None:
    letters = DeadLetters(raw)
    letters.bury("invalid_state", "gone", "q", b"")
    with pytest.raises(ValueError, match="no message to requeue"):
        letters.requeue(letters.entries()[0].id)


def test_the_stream_is_bounded(raw: redis.Redis) -> None:
    letters = DeadLetters(raw)
    pipe = raw.pipeline(transaction=False)
    for i in range(MAXLEN + 500):
        letters.bury("undecodable", "x", "q", str(i).encode(), pipe=pipe)
    pipe.execute()
    assert MAXLEN <= raw.xlen(keys.dead()) < MAXLEN + 500
    assert letters.counts() == {"undecodable": MAXLEN + 500}
