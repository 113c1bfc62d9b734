"""Failover under Sentinel: a master, one replica and three ``redis-sentinel`` processes
(Debian's) the test starts. The fleet is pointed at the sentinels (``sentinel://``); the
master is killed with requests in flight; the sentinels promote the replica; the worker
follows it, a request submitted after the failover completes, and every request that was
in flight either completes or fails with a reason: none is lost silently."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from cato_mq import CodingTask, RequestFailed, submit
from cato_mq.app import SENTINEL_TRANSPORT, get_app
from cato_mq.fleet import launch
from cato_mq.state import connect, keys
from tests.state.servers import Point, start_redis, stop, wait_up

SENTINEL = "/usr/bin/redis-sentinel"
REDIS = "/usr/bin/redis-server"
MASTER = "mymaster"


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    until = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > until:
            raise TimeoutError(f"not after {timeout_s} s: {what}")
        time.sleep(0.1)


class Cluster:
    """Master, replica and three sentinels on free ports, all under ``tmp``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.master_port, self.replica_port = launch.free_port(), launch.free_port()
        self.sentinel_ports = [launch.free_port() for _ in range(3)]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> Cluster:
        for name, port, extra in (("master", self.master_port, []),
                                  ("replica", self.replica_port, ["--replicaof", "127.0.0.1", str(self.master_port)])):
            d = self.tmp / name
            d.mkdir()
            self.procs[name] = start_redis(REDIS, ["--port", str(port), *extra], d)
            wait_up(redis.Redis(port=port), self.procs[name])
        for i, port in enumerate(self.sentinel_ports):
            conf = self.tmp / f"sentinel-{i}.conf"  # a sentinel rewrites its config: one file each
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.tmp}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 10000\n"
                f"sentinel parallel-syncs {MASTER} 1\n")
            self.procs[f"sentinel-{i}"] = subprocess.Popen([SENTINEL, str(conf)], stdout=subprocess.DEVNULL,
                                                           stderr=subprocess.DEVNULL)
        for port in self.sentinel_ports:  # each knows the replica and the two other sentinels
            s = redis.Redis(port=port, decode_responses=True)
            wait_for(lambda s=s: int(s.sentinel_master(MASTER)["num-other-sentinels"]) == 2
                     and int(s.sentinel_master(MASTER)["num-slaves"]) == 1, 30, "sentinels that know each other")
        return self

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{p}" for p in self.sentinel_ports) + "/0"

    def master_addr(self) -> tuple[str, int]:
        host, port = redis.Redis(port=self.sentinel_ports[0]).sentinel_get_master_addr_by_name(MASTER)
        return host.decode() if isinstance(host, bytes) else host, int(port)

    def kill_master(self) -> None:
        self.procs["master"].send_signal(signal.SIGKILL)
        self.procs["master"].wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                stop(proc)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    if not (os.path.exists(SENTINEL) and os.path.exists(REDIS)):
        pytest.skip("Debian's redis-server and redis-sentinel are needed")
    c = Cluster(tmp_path)
    try:
        yield c.start()
    finally:
        c.stop()


def request(max_tokens: int) -> CodingTask:
    return CodingTask(kind="summarization", prompt="def f(): pass", max_tokens=max_tokens,
                      sla={"metric": "e2e", "seconds": 60})


def test_the_fleet_follows_a_failover_and_loses_nothing_silently(cluster: Cluster, point: Point,
                                                                 tmp_path: Path) -> None:
    point(cluster.url)
    assert get_app().conf.broker_transport == SENTINEL_TRANSPORT
    client = connect.connect(cluster.url, MASTER)
    worker = launch.start_worker(cluster.url, ["--pool", "default", "--device", "0", "--time-scale", "4"],
                                 log=tmp_path / "worker.log")
    try:
        launch.wait_replicas(client, "default", 1, procs=[worker])
        assert submit(request(4)).result(timeout=60).text  # through the sentinels' master
        in_flight = [submit(request(40)) for _ in range(4)]
        for kind, _ in in_flight[0].events(timeout=30):
            if kind == "tok":
                break  # nodes are running
        master = redis.Redis(port=cluster.master_port)
        assert master.execute_command("WAIT", 1, 2000) == 1  # the replica has what was published
        cluster.kill_master()
        wait_for(lambda: cluster.master_addr()[1] == cluster.replica_port, 60, "the replica promoted")

        after = submit(request(4))  # published into the promoted replica
        assert after.result(timeout=60).text
        # popped by cato-mq's pop script over Sentinel (it counts deliveries; kombu's BRPOP does not)
        assert client.get(keys.attempt(keys.node_task_id(after.request_id, 0, "llm"))) == "1"
        outcomes = []
        for h in in_flight:
            try:
                outcomes.append("completed" if h.result(timeout=60).text else "empty")
            except RequestFailed as exc:  # a failure with its reason reaches the client
                outcomes.append(f"failed: {exc}")
        assert all(o == "completed" or o.startswith("failed: ") for o in outcomes), outcomes
        print("in flight at the failover:", outcomes)
        assert worker.poll() is None, "the worker exited at the failover"
        assert "Traceback" not in (tmp_path / "worker.log").read_text()
    finally:
        launch.stop([worker])
