"""The provisioner for real: celery beat, the control worker, several agents playing hosts with
made-up CPU devices, and sim-engine workers with a cold start, all on a throwaway Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from beat.tick import provision_tick
from cato_mq import CodingTask, Result, submit
from cato_mq import app as cato_app
from cato_mq.fleet import launch, records
from cato_mq.state import keys

TICK_S = 0.5
LEASE_S = 1.5
#: Short everything, so a test sees several windows, ticks and leases within seconds.
FLEET_ENV = {
    "CATO_WINDOW_S": "2",
    "CATO_SCALE_TICK_S": str(TICK_S),
    "CATO_SCALE_LEADER_TTL_S": "1.5",
    "CATO_SCALE_LEASE_S": str(LEASE_S),
    "CATO_SCALE_ORDER_TTL_S": "3",
    "CATO_SCALE_CALM_S": "3",
    "CATO_SCALE_DOWN_COOLDOWN_S": "3",
    "CATO_SCALE_MIN_REPLICAS": "other=0",
    "CATO_SCALE_DEFAULT_MAX": "3",
}
#: Worker cold start (model load) of the sim engine in these tests.
COLD_START_S = 1.0


def wait_for(cond: Callable[[], object], timeout: float, what: str) -> object:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"not within {timeout} s: {what}")


class Fleet:
    def __init__(self, url: str, rds: redis.Redis, tmp: Path, env: dict[str, str]) -> None:
        self.url, self.rds, self.tmp, self.env = url, rds, tmp, env
        self.procs: list[subprocess.Popen[bytes]] = []
        self.profile = tmp / "cold.json"
        self.profile.write_text(json.dumps({"cold_start_s": COLD_START_S}))

    def start(self, *args: str, log: str) -> subprocess.Popen[bytes]:
        proc = launch.start_cli(self.url, args, self.env, self.tmp / f"{log}.log")
        self.procs.append(proc)
        return proc

    def agent(self, host: str, devices: str) -> subprocess.Popen[bytes]:
        proc = self.start("agent", "--host", host, "--devices", devices, "--platform", "cpu", "-c", "2",
                          "--profile", str(self.profile), "--log-dir", str(self.tmp), log=f"agent-{host}")
        wait_for(lambda: self.rds.exists(keys.agent(host)), 30, f"agent {host} registered")
        return proc

    def control(self, beats: int = 1) -> list[subprocess.Popen[bytes]]:
        self.start("provisioner", "-l", "INFO", log="provisioner")
        return [self.start("beat", "-l", "INFO", log=f"beat-{i}") for i in range(beats)]

    def ready(self, pool: str) -> list[records.ReplicaRecord]:
        return [r for r in records.read(self.rds).replicas(pool) if r.state == "ready"]

    def wait_ready(self, pool: str, n: int, timeout: float = 60) -> None:
        wait_for(lambda: len(self.ready(pool)) == n, timeout, f"{n} ready replica(s) of {pool}")

    def events(self, pool: str | None = None) -> list[dict[str, str]]:
        return [e for e in records.timeline(self.rds) if pool in (None, e["pool"])]

    def stop(self) -> None:
        for p in reversed(self.procs):  # beats and provisioner first, agents (and workers) last
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        launch.stop(self.procs, timeout_s=30)


@pytest.fixture
def make_fleet(rds: redis.Redis, redis_url: str, tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    made: list[Fleet] = []

    def make(**extra: str) -> Fleet:
        f = Fleet(redis_url, rds, tmp_path, {**FLEET_ENV, **extra})
        made.append(f)
        return f

    yield make
    for f in made:
        f.stop()


def burst(n: int, pool: str = "default", sla_s: float = 1.0, max_tokens: int = 48) -> list[Result]:
    task = CodingTask(kind="summarization", prompt="def f(x):\n    return x\n", pool=pool,
                      max_tokens=max_tokens, sla={"metric": "e2e", "seconds": sla_s})
    handles = [submit(task) for _ in range(n)]
    return [h.result(timeout=120) for h in handles]


def test_burst_grows_the_fleet_and_calm_shrinks_it_to_the_minimum(make_fleet: Callable[..., Fleet]) -> None:
    f = make_fleet()
    f.agent("h1", "0,1")
    f.agent("h2", "0,1")
    f.control()
    f.wait_ready("default", 1)
    assert f.ready("other") == []  # its minimum is 0

    began = time.time()
    results = burst(60)  # 60 requests at once on 2 batch slots: queues, violations
    assert len(results) == 60 and all(r.text for r in results)  # none lost, none failed
    first_violation = min(n.ended_at for r in results for n in r.nodes if not n.met_deadline)
    requested = [float(e["at"]) for e in f.events("default") if e["state"] == "requested" and float(e["at"]) > began]
    assert requested, "the burst added no replica"
    assert (requested[0] - first_violation) / TICK_S <= 4  # within a bounded number of ticks

    # load stopped: back to the minimum, one retire at a time, nothing failed while draining
    f.wait_ready("default", 1, timeout=60)
    wait_for(lambda: len(records.read(f.rds).replicas("default")) == 1, 30, "drained replicas gone")
    states = [e["state"] for e in f.events("default")]
    assert states.count("gone") == states.count("draining") >= 1
    assert sum(int(w.get("failed", 0)) for k in f.rds.scan_iter("cato:win:default:*")
               for w in [f.rds.hgetall(k)]) == 0


def test_retire_lets_in_flight_requests_finish(make_fleet: Callable[..., Fleet]) -> None:
    f = make_fleet(CATO_SCALE_CALM_S="600")
    f.agent("h1", "0,1")
    f.control()
    f.wait_ready("default", 1)
    (replica,) = f.ready("default")
    task = CodingTask(kind="summarization", prompt="def slow(): pass", max_tokens=300,
                      sla={"metric": "e2e", "seconds": 60})
    h = submit(task)
    for kind, _ in h.events(30):
        if kind == "tok":
            break  # the node runs on the only replica
    order = {"op": "retire", "name": replica.name, "device": replica.device, "pool": "default", "at": time.time()}
    f.rds.rpush(keys.orders("h1"), json.dumps(order))
    wait_for(lambda: any(e["state"] == "draining" for e in f.events("default")), 10, "draining")
    result = h.result(timeout=60)
    assert result.text and not result.nodes[0].redelivered and result.nodes[0].worker == replica.name
    wait_for(lambda: any(e["state"] == "gone" and e["replica"] == replica.name for e in f.events()), 30, "gone")
    gone_at = next(float(e["at"]) for e in f.events() if e["state"] == "gone")
    assert gone_at >= result.nodes[0].ended_at  # shut down only after its in-flight node ended
    f.wait_ready("default", 1)  # the minimum is restored


def test_sigkilled_agent_frees_its_devices_and_replicas_move(make_fleet: Callable[..., Fleet]) -> None:
    f = make_fleet(CATO_SCALE_MIN_REPLICAS="default=2,other=0")
    victim = f.agent("h1", "0")
    f.agent("h2", "0,1")
    f.control()
    f.wait_ready("default", 2)
    assert {r.host for r in f.ready("default")} == {"h1", "h2"}  # spread over hosts
    killed = time.time()
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    wait_for(lambda: not f.rds.exists(keys.lease("h1", "0")), LEASE_S + 5, "h1's lease expired")
    freed = time.time() - killed
    assert freed <= LEASE_S + 1.0
    # the dead host's record leaves "ready" at the provisioner's next pass, not with the
    # lease: waiting for two ready replicas alone could still count it
    moved = {("h2", "0"), ("h2", "1")}
    wait_for(lambda: {(r.host, r.device) for r in f.ready("default")} == moved, 60, "both replicas on h2")
    # the worker died with its agent: nothing serves from h1 any more
    registry = f.rds.hgetall(keys.replicas("default"))
    assert "default-sim-d0@h1" not in registry or time.time() - float(registry["default-sim-d0@h1"].split()[2]) > 1


def test_two_beats_act_as_one(make_fleet: Callable[..., Fleet]) -> None:
    f = make_fleet()
    f.agent("h1", "0,1")
    beats = f.control(beats=2)
    f.wait_ready("default", 1)
    time.sleep(2.0)  # let both beats run several periods; what is measured is who sent ticks
    sent = [(f.tmp / f"beat-{i}.log").read_text().count("Sending due task") for i in range(2)]
    assert sorted(sent)[0] == 0 and sorted(sent)[1] >= 3
    assert len(records.read(f.rds).replicas("default")) == 1  # one replica, not one per beat
    # a tick sent by anyone but the leader is ignored
    assert provision_tick("not-the-leader").startswith("ignored")
    # the standby takes over once the leader dies
    leader = beats[0] if sent[0] else beats[1]
    standby_log = f.tmp / f"beat-{1 if sent[0] else 0}.log"
    leader.kill()
    leader.wait(10)
    wait_for(lambda: "Sending due task" in standby_log.read_text(), 10, "standby beat took over")


def test_on_device_exhaustion_the_lower_score_pool_gives_up(
    make_fleet: Callable[..., Fleet], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATO_POOLS", "default,other,third")
    cato_app.reset()
    f = make_fleet(CATO_POOLS="default,other,third", CATO_SCALE_MIN_REPLICAS="other=0,third=0",
                   CATO_SCALE_SENSITIVITY="default=1,other=1,third=0", CATO_SCALE_CALM_S="600",
                   CATO_SCALE_MAX_STEP="1", CATO_SCALE_MAX_REPLICAS="default=2")
    f.agent("h1", "0,1,2")
    f.control()
    f.wait_ready("default", 1)
    burst(1, pool="other", sla_s=30)  # queued work in an empty pool brings it one replica
    burst(1, pool="third", sla_s=30)
    f.wait_ready("other", 1)
    f.wait_ready("third", 1)
    assert records.read(f.rds).free_devices == 0
    results = burst(40)
    assert all(r.text for r in results)
    f.wait_ready("default", 2)
    assert f.ready("third") == [] and len(f.ready("other")) == 1
    assert [e["state"] for e in f.events("other")].count("draining") == 0
    cato_app.reset()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["agent", "--devices", " "], {}, "at least one device"),
        (["agent", "--devices", "0", "--profile", "nope=x.json"], {}, "unknown pool 'nope'"),
        (["provisioner"], {"CATO_SCALE_MIN_REPLICAS": "default=5", "CATO_SCALE_MAX_REPLICAS": "default=2"},
         "above maximum"),
        (["beat"], {"CATO_SCALE_MAX_REPLICAS": "nope=1"}, "unknown pool"),
    ],
)
def test_bad_configuration_is_refused_at_start(redis_url: str, args: list[str], env: dict[str, str],
                                               message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "cato_mq.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
