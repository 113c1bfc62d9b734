"""cato-mq's kombu transport against real Redis, with kombu's own producer and consumer."""

from __future__ import annotations

import base64
import heapq
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.message import Message

from cato_mq.policy import admission
from cato_mq.policy.tiers import Tier, message_priority
from cato_mq.state import hold, keys, transport
from cato_mq.state.publish import published_epoch

TRANSPORT = "cato_mq.state.transport:Transport"


class SlowWakeTransport(transport.Transport):
    brpop_timeout = 30  # an idle consumer looks again only after 30 s unless it is rung


@pytest.fixture
def conn(rds: redis.Redis, redis_url: str) -> Iterator[Connection]:
    c = Connection(redis_url, transport=TRANSPORT, transport_options={"visibility_timeout": 60})
    yield c
    c.release()


def publish(conn: Connection, queue: str, *, priority: int = 0, task_id: str | None = None,
            head: bool = False) -> str:
    task_id = task_id or uuid.uuid4().hex
    with conn.channel() as channel:
        Producer(channel).publish([[1], {}, {}], routing_key=queue, priority=priority, serializer="json",
                                  headers={"task": "t", "id": task_id, transport.HEAD_HEADER: int(head)})
    return task_id


def consume(conn: Connection, queues: list[str], count: int = 1, timeout: float = 5.0) -> list[Message]:
    got: list[Message] = []
    with conn.channel() as channel, Consumer(channel, [Queue(q) for q in queues], callbacks=[
        lambda _body, message: got.append(message)
    ]):
        while len(got) < count:
            conn.drain_events(timeout=timeout)
    return got


def envelope(body: Any, *, content_type: str = "application/json", task: str = "t", raw_body: str | None = None) -> str:
    encoded = raw_body if raw_body is not None else base64.b64encode(json.dumps(body).encode()).decode()
    return json.dumps({
        "body": encoded, "content-encoding": "utf-8", "content-type": content_type,
        "headers": {"task": task, "id": f"{'a' * 32}-0-llm"},
        "properties": {"delivery_tag": "x", "delivery_info": {"exchange": "", "routing_key": "q"},
                       "priority": 0, "body_encoding": "base64"},
    })


def test_a_delivery_is_unacked_from_the_pop_and_counted(conn: Connection, rds: redis.Redis) -> None:
    task_id = publish(conn, "q")
    [message] = consume(conn, ["q"])
    # the pop recorded it: no moment existed where it was in no list and no unacked set
    assert rds.hexists(keys.UNACKED, message.delivery_tag)
    assert rds.zscore(keys.UNACKED_INDEX, message.delivery_tag) is not None
    assert message.headers[transport.ATTEMPT_HEADER] == 1
    assert rds.get(keys.attempt(task_id)) == "1" and rds.ttl(keys.attempt(task_id)) > 0
    message.ack()
    assert rds.hlen(keys.UNACKED) == 0 and rds.zcard(keys.UNACKED_INDEX) == 0


def test_a_message_published_for_the_head_is_popped_before_the_queued_ones(
    conn: Connection, rds: redis.Redis
) -> None:
    behind = [publish(conn, "q") for _ in range(2)]
    rds.delete(keys.bell("q"))
    ahead = publish(conn, "q", head=True)
    assert rds.llen(keys.bell("q")) == 1  # rung like any publish
    got = consume(conn, ["q"], count=3)
    assert [m.headers["id"] for m in got] == [ahead, *behind]


def test_a_restored_message_comes_back_with_the_next_attempt(conn: Connection, rds: redis.Redis) -> None:
    publish(conn, "q")
    [first] = consume(conn, ["q"])
    rds.delete(keys.bell("q"))  # the publish's ring
    first.channel.qos.restore_by_tag(first.delivery_tag)  # what the sweeper does past the timeout
    assert rds.llen(keys.bell("q")) == 1  # the restore rang the doorbell
    [second] = consume(conn, ["q"])
    assert second.headers[transport.ATTEMPT_HEADER] == 2
    assert second.delivery_tag != first.delivery_tag
    second.ack()


def test_strict_order_across_queues_and_priorities(conn: Connection) -> None:
    publish(conn, "p.safe", priority=6, task_id="safe")
    publish(conn, "p.at_risk", priority=3, task_id="at_risk")
    publish(conn, "p.violated", priority=0, task_id="violated")
    got = consume(conn, ["p.violated", "p.at_risk", "p.safe"], count=3)
    assert [m.headers["id"] for m in got] == ["violated", "at_risk", "safe"]


def test_the_apps_priority_steps_serve_ttft_then_short_then_long_e2e_work_in_a_tier(redis_url: str) -> None:
    from cato_mq.app import celery_config
    from cato_mq.settings import Settings

    options = celery_config(Settings(redis_url=redis_url))["broker_transport_options"]
    c = Connection(redis_url, transport=TRANSPORT, transport_options=options)
    try:
        long = publish(c, "t.at_risk", priority=message_priority(Tier.at_risk, False, long_work=True))
        short = publish(c, "t.at_risk", priority=message_priority(Tier.at_risk, False))
        ttft = publish(c, "t.at_risk", priority=message_priority(Tier.at_risk, True))
        got = consume(c, ["t.violated", "t.at_risk"], count=3)
        assert [m.headers["id"] for m in got] == [ttft, short, long]  # published later, served first
        for m in got:
            m.ack()
    finally:
        c.release()


def test_a_tier_queue_holds_any_priority_in_its_own_lists_and_nothing_is_stranded(
    redis_url: str, rds: redis.Redis
) -> None:
    from cato_mq.app import celery_config
    from cato_mq.settings import Settings

    options = celery_config(Settings(redis_url=redis_url))["broker_transport_options"]
    c = Connection(redis_url, transport=TRANSPORT, transport_options=options)
    try:
        # the safe tier's own steps, then priorities of other tiers, below and above them
        sent = [publish(c, "t.safe", priority=p) for p in (6, 7, 0, 3, 4, 9)]
        own = keys.queue_lists("t", Tier.safe)[:3]
        assert sum(rds.llen(q) for q in own) == 6  # in the tier's own lists, none elsewhere
        with c.channel() as channel:
            assert channel.queue_declare("t.safe", passive=True).message_count == 6  # each counted once
            pop = channel._pop_command(keys.tier_queues("t"))  # EVALSHA sha numkeys keys... argv
            argv = pop[3 + pop[2]:]
            assert argv[5] == 13  # a pool's pop names 13 lists, not one per step of every tier (40)
        got = consume(c, keys.tier_queues("t"), count=6)
        assert sorted(m.headers["id"] for m in got) == sorted(sent)  # every one delivered
        for m in got:
            m.ack()
    finally:
        c.release()


def test_a_message_from_a_publisher_of_kombus_defaults_is_served_after_the_tiers_own(
    conn: Connection, redis_url: str
) -> None:
    # kombu's own Redis transport, default steps, no priority: the bare queue name's list
    plain = Connection(redis_url)
    try:
        foreign = publish(plain, "t.safe")
    finally:
        plain.release()
    own = publish(conn, "t.safe", priority=message_priority(Tier.safe, False))
    got = consume(conn, keys.tier_queues("t"), count=2)
    assert [m.headers["id"] for m in got] == [own, foreign]
    for m in got:
        m.ack()


def test_basic_get_existence_and_delete_see_every_list_of_a_tier_queue(
    conn: Connection, redis_url: str, rds: redis.Redis
) -> None:
    plain = Connection(redis_url)  # kombu's own transport: the bare queue name's list
    try:
        foreign = publish(plain, "g.safe")
    finally:
        plain.release()
    own = publish(conn, "g.safe", priority=message_priority(Tier.safe, False))
    with conn.channel() as channel:
        got = [channel.basic_get("g.safe", no_ack=True) for _ in range(3)]
        assert [m.headers["id"] if m else None for m in got] == [own, foreign, None]
        publish(conn, "g.safe", priority=message_priority(Tier.safe, False))
        queue = Queue("g.safe", Exchange("g"), routing_key="g.safe")(channel)  # a binding to delete
        queue.declare()
        assert channel._has_queue("g.safe")
        rds.lpush("g.safe", "a message in the bare list")
        queue.delete()
        assert not channel._has_queue("g.safe")
    assert not any(rds.exists(q) for q in keys.queue_lists("g", Tier.safe))


def test_a_held_worker_passes_over_llm_nodes_to_the_next_other_step(conn: Connection, rds: redis.Redis) -> None:
    # cato+'s gate refused an LLM node for want of room: the worker goes on with nodes of
    # other steps, and leaves the LLM nodes at the head of the queue for a sibling
    llm = [publish(conn, "q", task_id=f"{c * 32}-1-llm") for c in "ab"]
    retrieve = publish(conn, "q", task_id=f"{'c' * 32}-0-retrieve")
    rds.set(hold.llm_hold.key, 1, px=30_000)  # what `close` sets, for longer than this test
    try:
        [message] = consume(conn, ["q"])
        assert message.headers["id"] == retrieve
        assert rds.hexists(keys.UNACKED, message.delivery_tag)  # taken as any pop takes
        message.ack()
        consume_nothing(conn, "q")  # LLM nodes only: nothing taken, both still queued
        assert rds.llen("q") == 2 and rds.hlen(keys.UNACKED) == 0
    finally:
        hold.llm_hold.open(rds)
    got = consume(conn, ["q"], count=2)
    assert [m.headers["id"] for m in got] == llm  # in their order, none lost
    for m in got:
        m.ack()


def test_a_held_worker_knows_an_llm_node_by_its_own_header_only(conn: Connection, rds: redis.Redis) -> None:
    # the held pop matches a raw `"id": "<request>-<n>-llm"` before decoding: a node of
    # another step that merely carries such text (in a header's string, as Celery's argsrepr
    # does) is still taken
    lookalike = f'{{"id": "{"b" * 32}-1-llm"}}'
    with conn.channel() as channel:
        Producer(channel).publish([[lookalike], {}, {}], routing_key="q", serializer="json",
                                  headers={"task": "t", "id": f"{'c' * 32}-0-retrieve", "argsrepr": lookalike})
    rds.set(hold.llm_hold.key, 1, px=30_000)
    try:
        [message] = consume(conn, ["q"])
        assert message.headers["id"] == f"{'c' * 32}-0-retrieve"
        message.ack()
    finally:
        hold.llm_hold.open(rds)


def test_a_held_pop_looks_at_the_first_window_of_nodes_over_all_lists(conn: Connection, rds: redis.Redis) -> None:
    # the budget is admission.WINDOW nodes in service order, not that many per list: a pop
    # copies at most that many messages, however deep the backlog
    order = ["w.violated", "w.at_risk", "w.safe"]
    llm = [publish(conn, order[i % 2], task_id=f"{i:032x}-1-llm") for i in range(admission.WINDOW)]
    retrieve = publish(conn, "w.safe", task_id=f"{'c' * 32}-0-retrieve")
    rds.set(hold.llm_hold.key, 1, px=30_000)
    try:
        with pytest.raises(TimeoutError):  # behind the window: not looked at while held
            consume(conn, order, timeout=1.5)
        hold.llm_hold.open(rds)
        [first] = consume(conn, order)
        assert first.headers["id"] == llm[0]
        first.ack()
        rds.set(hold.llm_hold.key, 1, px=30_000)
        [message] = consume(conn, order)  # now within the window
        assert message.headers["id"] == retrieve
        message.ack()
        waiting = [q for t in (Tier.violated, Tier.at_risk) for q in keys.queue_lists("w", t)]
        assert sum(rds.llen(q) for q in waiting) == admission.WINDOW - 1
    finally:
        hold.llm_hold.open(rds)


def close_for_the_test(rds: redis.Redis, every: bool) -> None:
    """Hold LLM nodes back as a refusal does, for 30 s: longer than a test, where a refusal's
    hold lasts ``HOLD_S``."""
    hold.llm_hold.close(rds, every=every)
    rds.pexpire(hold.llm_hold.key, 30_000)


def test_a_hold_reaches_first_token_nodes_only_after_a_first_token_refusal(
    conn: Connection, rds: redis.Redis
) -> None:
    # the gate asks less of a node whose first token decides its SLA: after an E2E node's
    # refusal a completion's LLM node still reaches the engine; after a first-token node's
    # refusal every LLM node waits
    e2e = publish(conn, "q", task_id=keys.node_task_id("a" * 32, 0, "llm"))
    first = publish(conn, "q", task_id=keys.node_task_id("b" * 32, 1, "llm", first_token=True))
    retrieve = publish(conn, "q", task_id=keys.node_task_id("c" * 32, 0, "retrieve"))
    assert first.endswith(keys.FIRST_TOKEN_TAG)
    try:
        close_for_the_test(rds, every=True)
        [message] = consume(conn, ["q"])
        assert message.headers["id"] == retrieve
        message.ack()
        consume_nothing(conn, "q")
        close_for_the_test(rds, every=False)
        [message] = consume(conn, ["q"])
        assert message.headers["id"] == first
        message.ack()
        consume_nothing(conn, "q")  # the E2E node stays held back, queued
        assert rds.llen("q") == 1
    finally:
        hold.llm_hold.open(rds)
    [message] = consume(conn, ["q"])
    assert message.headers["id"] == e2e
    message.ack()


def test_a_held_pop_tells_node_ids_apart_in_a_message_it_must_decode(conn: Connection, rds: redis.Redis) -> None:
    # a publisher writing compact JSON ('"id":"...' without the space) slips past the raw
    # match: the pop decodes the message and judges its id the same way, tag included
    def push(task_id: str) -> None:
        message = json.loads(envelope([[1], {}, {}]))
        message["headers"]["id"] = task_id
        rds.lpush("q", json.dumps(message, separators=(",", ":")))

    e2e, first = keys.node_task_id("a" * 32, 0, "llm"), keys.node_task_id("b" * 32, 1, "llm", first_token=True)
    push(e2e)
    push(first)
    try:
        close_for_the_test(rds, every=True)
        consume_nothing(conn, "q")  # both wait
        close_for_the_test(rds, every=False)
        [message] = consume(conn, ["q"])
        assert message.headers["id"] == first
        message.ack()
        consume_nothing(conn, "q")
    finally:
        hold.llm_hold.open(rds)
    [message] = consume(conn, ["q"])
    assert message.headers["id"] == e2e
    message.ack()


def test_a_hold_expires_by_itself(conn: Connection, rds: redis.Redis) -> None:
    hold.llm_hold.close(rds, every=True)
    assert 0 < rds.pttl(hold.llm_hold.key) <= hold.HOLD_S * 1000
    llm = publish(conn, "q", task_id=f"{'a' * 32}-1-llm")
    [message] = consume(conn, ["q"])  # a worker that never opens it looks again after HOLD_S
    assert message.headers["id"] == llm
    message.ack()


def test_an_idle_consumer_wakes_on_the_doorbell(redis_url: str, rds: redis.Redis) -> None:
    # a 30 s blocking wait: without the doorbell the message would be found only after it
    slow = Connection(redis_url, transport=SlowWakeTransport)
    got: list[Message] = []
    ready = threading.Event()

    def run() -> None:
        with slow.channel() as channel, Consumer(channel, [Queue("idle")], callbacks=[
            lambda _b, m: got.append(m)
        ]):
            ready.set()
            slow.drain_events(timeout=20)

    thread = threading.Thread(target=run)
    thread.start()
    ready.wait(5)
    until = time.monotonic() + 10
    while not any(c["cmd"] == "blpop" for c in rds.client_list()):  # it waits on the doorbell now
        assert time.monotonic() < until, "the consumer never waited on its doorbell"
    with Connection(redis_url, transport=TRANSPORT) as pub:
        publish(pub, "idle")
    thread.join(10)
    assert not thread.is_alive() and len(got) == 1
    got[0].ack()
    slow.release()


def test_publish_rings_the_doorbell_and_names_the_epoch(conn: Connection, rds: redis.Redis) -> None:
    publish(conn, "q")
    assert rds.llen(keys.bell("q")) == 1 and 0 < rds.ttl(keys.bell("q")) <= transport.BELL_TTL_S
    assert published_epoch() == rds.get(keys.epoch())
    publish(conn, "q")
    assert published_epoch() == rds.get(keys.epoch())  # one epoch per Redis incarnation
    consume(conn, ["q"], count=2)
    consume_nothing(conn, "q")
    assert not rds.exists(keys.bell("q"))  # the pop that found nothing cleared stale rings


def consume_nothing(conn: Connection, queue: str) -> None:
    with pytest.raises(TimeoutError):
        consume(conn, [queue], timeout=1.5)


POISON = {
    "undecodable": b"\xff\xfe{not json",
    "number": b"42",
    "envelope": b"[1, 2, 3]",
    "not base64": envelope(None, raw_body="%%% not base64 %%%").encode(),
    "body not a list": envelope({"a": 1}).encode(),
    "pickle": envelope(None, content_type="application/x-python-serialize").encode(),
}


@pytest.mark.parametrize("name", sorted(POISON))
def test_poison_is_buried_and_the_next_message_delivered(
    conn: Connection, rds: redis.Redis, redis_url: str, name: str
) -> None:
    rds.lpush("q", POISON[name])
    good = publish(conn, "q")
    [message] = consume(conn, ["q"])
    assert message.headers["id"] == good
    message.ack()
    raw = redis.Redis.from_url(redis_url)  # bytes: the raw item survives as it was
    [(_, letter)] = raw.xrange(keys.dead())
    assert letter[b"raw"] == POISON[name]  # kept byte for byte, for a person to read or requeue
    assert letter[b"queue"] == b"q" and letter[b"list"] == b"q" and float(letter[b"at"]) > 0
    assert letter[b"kind"] in (b"undecodable", b"envelope", b"shape", b"content_type")
    assert sum(int(v) for v in rds.hgetall(keys.dead_counts()).values()) == 1
    assert rds.hlen(keys.UNACKED) == 0  # buried, not left to be redelivered


def test_a_buried_message_of_a_request_fails_the_request(conn: Connection, rds: redis.Redis) -> None:
    rds.lpush("q", envelope({"not": "a list"}))
    publish(conn, "q")
    consume(conn, ["q"])[0].ack()
    [(_, err)] = rds.xrange(keys.stream("a" * 32))
    assert err["t"] == "err" and "shape" in err["d"] and "[args, kwargs, embed]" in err["d"]


def test_an_oversize_message_is_buried_by_the_pop_and_fails_its_request(redis_url: str, rds: redis.Redis) -> None:
    with Connection(redis_url, transport=TRANSPORT, transport_options={"max_message_bytes": 2000}) as small:
        rds.lpush("q", envelope(["x" * 5000]))
        consume_nothing(small, "q")
    [(_, letter)] = rds.xrange(keys.dead())
    assert letter["kind"] == "oversize" and "the limit is 2000" in letter["reason"]
    assert len(letter["raw"]) == transport.OVERSIZE_KEPT  # kept in part only
    [(_, err)] = rds.xrange(keys.stream("a" * 32))  # the request its headers name
    assert err["t"] == "err" and "oversize" in err["d"]


def test_an_oversize_publish_is_refused_at_once(redis_url: str, rds: redis.Redis) -> None:
    small = Connection(redis_url, transport=TRANSPORT, transport_options={"max_message_bytes": 2000})
    with pytest.raises(ValueError, match="the limit is 2000"), small.channel() as channel:
        Producer(channel).publish([["x" * 5000], {}, {}], routing_key="q", serializer="json",
                                  headers={"task": "t", "id": "x"})
    small.release()
    assert rds.llen("q") == 0


def test_an_ack_after_the_connection_closed_reaches_redis(redis_url: str, rds: redis.Redis) -> None:
    c = Connection(redis_url, transport=TRANSPORT)
    publish(c, "q")
    [message] = consume(c, ["q"])
    c.close()  # as a reconnect does while the node still runs
    message.ack()  # kombu's own channel raised AttributeError here ('NoneType' ... 'hostname')
    assert rds.hlen(keys.UNACKED) == 0


def test_a_sweeper_killed_holding_the_restore_lock_stops_restores_for_seconds_not_minutes(
    redis_url: str, rds: redis.Redis
) -> None:
    from cato_mq.app import UNACKED_MUTEX_EXPIRE_S, celery_config
    from cato_mq.settings import Settings

    options = celery_config(Settings(redis_url=redis_url, visibility_timeout_s=0.2))["broker_transport_options"]
    c = Connection(redis_url, transport=TRANSPORT, transport_options=options)
    try:
        publish(c, "q")
        [orphan] = consume(c, ["q"])  # its worker dies: never acked
        channel = orphan.channel
        # what a sweeper killed mid-sweep leaves behind: the lock, with the configured expiry
        assert rds.lock(channel.unacked_mutex_key, timeout=channel.unacked_mutex_expire).acquire(blocking=False)
        time.sleep(0.3)  # past the visibility timeout: the message is due for a restore
        channel.qos.restore_visible(interval=1)
        assert rds.zcard(channel.unacked_index_key) == 1, "the held lock stops a sweep"
        until = time.monotonic() + 3 * UNACKED_MUTEX_EXPIRE_S  # kombu's default held it 300 s
        while rds.zcard(channel.unacked_index_key) and time.monotonic() < until:
            channel.qos.restore_visible(interval=1)
            time.sleep(0.1)
        [again] = consume(c, ["q"])
        assert again.headers[transport.ATTEMPT_HEADER] == 2
        again.ack()
    finally:
        c.release()


def test_an_ack_from_a_task_thread_wakes_a_loop_that_was_out_of_credit(redis_url: str, rds: redis.Redis) -> None:
    # Celery's worker consumes in kombu's event loop and acks from its pool's threads. With
    # every slot taken (prefetch 1 here) the loop polls no queue, so only a wake-up from
    # the ack gets the next message taken before the loop's next timer. Here that timer is
    # 8 s away; in a worker it is kombu's 1-s binding refresh (cancelled here so that the
    # two outcomes are seconds apart), or up to 10 s with a kombu without it
    from kombu.asynchronous import Hub
    from kombu.asynchronous.timer import Timer

    hub = Hub(Timer(max_interval=10.0))  # Celery's worker's (`celery.worker.components.Timer`)
    timer_fired = threading.Event()
    hub.call_later(8.0, timer_fired.set)
    got: list[tuple[Message, bool]] = []
    arrived = [threading.Event(), threading.Event()]

    def on_message(_body: Any, message: Message) -> None:
        got.append((message, timer_fired.is_set()))
        arrived[len(got) - 1].set()

    conn = Connection(redis_url, transport=TRANSPORT)
    conn.register_with_event_loop(hub)
    refresh = getattr(conn.transport.cycle, "_binding_expiry_tref", None)
    if refresh is not None:  # a cancelled entry still wakes the loop once: take it out
        hub.timer._queue[:] = [e for e in hub.timer._queue if e[2] is not refresh]
        heapq.heapify(hub.timer._queue)
    channel = conn.channel()
    channel.basic_qos(0, 1, False)
    Consumer(channel, [Queue("credit")], callbacks=[on_message]).consume()
    publish(conn, "credit")
    publish(conn, "credit")
    stop = threading.Event()

    def run() -> None:
        loop = hub.create_loop()
        while not stop.is_set():
            next(loop)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert arrived[0].wait(10), "the first message never came"
        got[0][0].ack()  # from this thread, as a task thread would
        assert arrived[1].wait(20), "the second message never came"
        assert not got[1][1], "the second message waited for the loop's next timer"
    finally:
        stop.set()
        hub.call_soon(lambda: None)
        thread.join(15)
        channel.close()
        conn.release()
        hub.close()
    assert not thread.is_alive()
