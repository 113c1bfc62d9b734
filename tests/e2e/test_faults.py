"""Faults against real worker processes and real Redis: poison on a tier queue, a worker
killed inside the pop window, a stale attempt after a pause, a dead worker's registry
entry, a Redis restart under load, and the ``cato-mq dead`` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cato_mq import CodingTask, submit
from cato_mq import app as cato_app
from cato_mq.bench.faults import poison
from cato_mq.bench.faults.fleet import frozen, wait_frozen
from cato_mq.bench.faults.server import RedisServer
from cato_mq.client import Handle, RequestFailed, RequestLost
from cato_mq.fleet import launch
from cato_mq.state import keys
from cato_mq.state.registry import REGISTRY_TTL_BEATS, parse_entry
from tests.conftest import TEST_ENV, WorkerFactory

FUZZ_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
FUZZ_WORKER: list[subprocess.Popen[bytes]] = []


def small(**kw: object) -> CodingTask:
    return CodingTask.model_validate({"kind": "summarization", "prompt": "def f(): pass", "max_tokens": 4, **kw})


def first_token_from(h: Handle, timeout: float = 30) -> str:
    for kind, fields in h.events(timeout):
        if kind == "tok":
            return fields["w"]
    raise AssertionError("request ended without a token")


def test_poison_on_a_tier_queue_is_buried_and_the_worker_goes_on(
    workers: WorkerFactory, rds: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    worker = workers()
    victim = uuid.uuid4().hex  # a request whose node message carries a state that fails validation
    items = poison.items(tmp_path / "unpickled", request_id=victim)
    for i, item in enumerate(items.values()):
        rds.lpush(keys.queue_lists("default", ("safe", "violated")[i % 2])[0], item)
    assert submit(small()).result(timeout=30).text  # served after all of them
    with pytest.raises(RequestFailed, match=r"invalid_state.*kind"):
        Handle(victim).result(timeout=30)
    raw = redis.Redis.from_url(redis_url)
    letters = raw.xrange(keys.dead())
    assert len(letters) == len(items)  # every one buried, none left in a queue or unacked
    kinds = sorted(f[b"kind"].decode() for _, f in letters)
    assert kinds == sorted(["undecodable", "undecodable", "envelope", "envelope", "shape", "content_type",
                            "unknown_task", "invalid_state", "oversize"])
    assert sum(int(v) for v in rds.hgetall(keys.dead_counts()).values()) == len(items)
    assert rds.hlen(keys.UNACKED) == 0
    assert not (tmp_path / "unpickled").exists()  # the pickle was refused, never loaded
    assert worker.poll() is None


def test_a_worker_killed_inside_the_pop_window_loses_nothing(workers: WorkerFactory, rds: redis.Redis) -> None:
    hooked = workers(env={"CATO_FAULT_AFTER_POP": "stop"})
    h = submit(small())
    assert wait_frozen(hooked, timeout_s=30), "the worker never took the message"
    # kombu's BRPOP had the message in no list and no unacked set at this point
    assert sum(rds.llen(q) for t in keys.TIERS for q in keys.queue_lists("default", t)) == 0
    hooked.kill()
    hooked.wait()
    workers()  # its sweeper puts the message back after the visibility timeout
    result = h.result(timeout=60)
    assert result.nodes[0].attempt == 2 and result.redeliveries == 1


def test_a_paused_worker_cannot_fail_a_node_its_redelivery_finishes(
    workers: WorkerFactory, rds: redis.Redis
) -> None:
    procs = [workers("--time-scale", "4"), workers("--time-scale", "4")]
    h = submit(small(max_tokens=80, sla={"metric": "e2e", "seconds": 60}))  # about 2 s of decoding
    serving = first_token_from(h)
    a, b = procs if serving.startswith("default-sim-d0@") else procs[::-1]
    a.send_signal(signal.SIGSTOP)  # past the visibility timeout (5 s) and the node timeout (4 s)
    try:
        until = time.monotonic() + 30
        while not any(f.get("w", serving) != serving for _, f in rds.xrange(keys.stream(h.request_id))):
            assert time.monotonic() < until, "the node was never redelivered"
            time.sleep(0.05)
    finally:
        a.send_signal(signal.SIGCONT)  # its copy times out or ends now, while the redelivered one runs
        resumed = time.time()
    result = h.result(timeout=60)
    assert result.nodes[0].worker != serving and result.nodes[0].attempt == 2
    until = time.monotonic() + 30
    while True:  # the resumed copy has ended (and written whatever it writes) once A is idle again
        entry = parse_entry(rds.hget(keys.replicas("default"), serving) or "1 1 0")
        if entry.beat > resumed and entry.inflight == 0:
            break
        assert time.monotonic() < until, "the paused worker never finished its copy"
        time.sleep(0.05)
    events = [f["t"] for _, f in rds.xrange(keys.stream(h.request_id))]
    assert "err" not in events and events.count("end") == 1
    windows = [rds.hgetall(k) for k in rds.keys("cato:win:default:*")]
    assert not any("failed" in w for w in windows)  # the stale failure was not counted either
    assert a.poll() is None and b.poll() is None


def test_a_killed_workers_registry_entry_expires(workers: WorkerFactory, rds: redis.Redis) -> None:
    doomed = workers()
    workers()
    assert rds.hlen(keys.replicas("default")) == 2
    doomed.kill()
    doomed.wait()
    ttl_s = REGISTRY_TTL_BEATS * float(TEST_ENV["CATO_HEARTBEAT_S"])
    until = time.monotonic() + ttl_s + 10
    while rds.hlen(keys.replicas("default")) > 1:  # removed by the other worker's heartbeat
        assert time.monotonic() < until, "the dead worker's entry never expired"
        time.sleep(0.1)
    [live] = rds.hkeys(keys.replicas("default"))
    assert live.startswith("default-sim-d1@")


def test_worker_logs_carry_no_prompt_or_generated_text(workers: WorkerFactory, tmp_path: Path) -> None:
    workers("-l", "INFO")
    secret = "def very_private_function_name(): pass"
    result = submit(small(prompt=secret)).result(timeout=30)
    until = time.monotonic() + 30
    while "succeeded" not in (log := (tmp_path / "worker-0.log").read_text()):  # logged after its ack
        assert time.monotonic() < until, "the worker never logged the node's success"
        time.sleep(0.05)
    assert secret not in log and result.text not in log  # INFO lines about the node, without its text


@pytest.fixture
def aof_redis(rds: redis.Redis) -> object:
    server = RedisServer(aof=True).start()
    saved = dict(os.environ)
    os.environ["CATO_REDIS_URL"] = server.url
    cato_app.reset()
    yield server
    os.environ.clear()
    os.environ.update(saved)
    cato_app.reset()
    server.close()


def test_a_redis_restart_with_nodes_in_flight_loses_nothing(aof_redis: RedisServer, tmp_path: Path) -> None:
    worker = launch.start_worker(aof_redis.url, ["--pool", "default", "--device", "0", "--time-scale", "4"],
                                 log=tmp_path / "worker.log")
    try:
        launch.wait_replicas(redis.Redis.from_url(aof_redis.url, decode_responses=True), "default", 1, procs=[worker])
        handles = [submit(small(max_tokens=40, sla={"metric": "e2e", "seconds": 60})) for _ in range(3)]
        first_token_from(handles[0])  # nodes are running
        aof_redis.restart(down_s=2.0)
        results = [h.result(timeout=60) for h in handles]
        assert all(r.text for r in results)
        assert worker.poll() is None, "the worker exited when Redis restarted"
        assert "AttributeError" not in (tmp_path / "worker.log").read_text()
    finally:
        launch.stop([worker])


def test_dead_lists_and_requeues(rds: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    rds.lpush("default.safe", "not json")
    from cato_mq.state.dead import DeadLetters

    DeadLetters(redis.Redis.from_url(redis_url)).bury("undecodable", "not JSON", "default.safe", b"not json",
                                                      list_key="default.safe")
    rds.delete("default.safe")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cato_mq.cli", "dead", *args], capture_output=True, text=True,
                              env={**os.environ, "CATO_REDIS_URL": redis_url}, timeout=60)

    listed = cli()
    assert listed.returncode == 0
    assert "undecodable 1" in listed.stdout and "default.safe  undecodable: not JSON" in listed.stdout
    [(entry_id, _)] = rds.xrange(keys.dead())
    assert cli("--requeue", entry_id).returncode == 0
    assert rds.lrange("default.safe", 0, -1) == ["not json"] and rds.xlen(keys.dead()) == 0
    refused = cli("--requeue", "nope")
    assert refused.returncode == 2 and "not a dead letter id" in refused.stderr


def test_frozen_reads_the_process_state() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not frozen(proc)
        proc.send_signal(signal.SIGSTOP)
        assert wait_frozen(proc, timeout_s=10)
    finally:
        proc.kill()
        proc.wait()


def test_agent_beat_and_provisioner_ride_out_a_redis_restart(aof_redis: RedisServer, tmp_path: Path) -> None:
    from tests.e2e.test_fleet import FLEET_ENV, Fleet, wait_for

    rds = redis.Redis.from_url(aof_redis.url, decode_responses=True)
    fleet = Fleet(aof_redis.url, rds, tmp_path, {**FLEET_ENV, "CATO_POOLS": "default,other"})
    try:
        agent = fleet.agent("h1", "0")
        control = [*fleet.control(), agent]
        fleet.wait_ready("default", 1)
        aof_redis.restart(down_s=2.0)
        restarted = time.time()
        wait_for(lambda: json.loads(rds.get(keys.prov_last()) or '{"at": 0}')["at"] > restarted, 30,
                 "a provisioner tick after the restart")
        assert submit(small()).result(timeout=60).text
        assert [p.poll() for p in control] == [None] * len(control), "a control process exited"
    finally:
        fleet.stop()


def test_a_request_redis_forgot_ends_with_a_clear_error(rds: redis.Redis) -> None:
    server = RedisServer(aof=False).start()
    saved = dict(os.environ)
    os.environ["CATO_REDIS_URL"] = server.url
    cato_app.reset()
    try:
        h = submit(small())  # no worker yet: the message waits in its queue
        assert h.epoch == redis.Redis.from_url(server.url, decode_responses=True).get(keys.epoch())
        server.restart(down_s=0.5)  # without persistence: the message is gone
        began = time.monotonic()
        with pytest.raises(RequestLost, match="Redis restarted without its data"):
            h.result(timeout=30)
        assert time.monotonic() - began < float(TEST_ENV["CATO_VISIBILITY_TIMEOUT_S"]) + 5
    finally:
        os.environ.clear()
        os.environ.update(saved)
        cato_app.reset()
        server.close()


def test_a_request_kept_by_aof_outlives_a_restart(aof_redis: RedisServer, tmp_path: Path) -> None:
    h = submit(small())  # no worker yet
    aof_redis.restart(down_s=0.5)
    worker = launch.start_worker(aof_redis.url, ["--pool", "default", "--device", "0"], log=tmp_path / "w.log")
    try:
        assert h.result(timeout=60).text  # the epoch survived with the data: not declared lost
    finally:
        launch.stop([worker])


NODE_ARGS = st.fixed_dictionaries({
    "args": st.lists(FUZZ_JSON, max_size=2),
    "kwargs": st.dictionaries(st.sampled_from(["pool", "index", "deadline", "expect", "x"]), FUZZ_JSON, max_size=5),
})


@given(st.lists(NODE_ARGS.map(lambda a: poison.envelope(json.dumps([a["args"], a["kwargs"], {}]).encode())),
                min_size=1, max_size=4))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzzed_node_messages_never_stop_a_worker(
    workers: WorkerFactory, rds: redis.Redis, items: list[bytes]
) -> None:
    if not FUZZ_WORKER:
        FUZZ_WORKER.append(workers())  # one worker for every example
    before = rds.xlen(keys.dead())
    for item in items:
        rds.lpush("default.safe", item)
    assert submit(small()).result(timeout=30).text  # taken after all of them
    until = time.monotonic() + 30
    while rds.hlen(keys.UNACKED):  # each fuzzed message was buried or acked
        assert time.monotonic() < until, "a fuzzed message stayed unacked"
        time.sleep(0.05)
    assert rds.xlen(keys.dead()) - before == len(items)  # none of them is a runnable node
    assert FUZZ_WORKER[0].poll() is None
