"""``cato-mq bench-scaling`` on a real fleet: cato's provisioner (with cato or cato+ routing)
vs a Ray Serve-style queue-length autoscaler, and static FIFO fleets.

Each policy gets a fresh fleet on a throwaway Redis (two agents playing hosts with three
made-up CPU devices, beat, the control worker, sim-engine workers with a cold start) and
the same seeded open-loop workload (``scaling.load``: ``bursty`` Poisson phases, or
a slice of the Azure code trace). ``fifo@N`` runs a static fleet of N replicas behind one
FIFO queue, for the static baseline. From the results and the replica timeline:

* **reaction**: from the moment the violation window crossed the threshold (the
  ``up_violations``-th violating node of that window finished) to the first node started
  on a replica requested after it, minus that replica's measured load time;
* **goodput**: share of requests that met their SLA;
* **replica-seconds**: device occupancy (lease taken to worker gone) within a fixed
  measurement window (the load plus a tail), and utilization = node-seconds served /
  (replica-seconds x batch slots).

Cold starts are real process starts on a small machine, so one run is noisy: by default
each policy runs twice, interleaved (cato, baseline, cato, baseline) so that background
load hits both alike, and the table shows every run and the median per policy.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import redis

from cato_mq import app as cato_app
from cato_mq.bench.scaling.load import Load
from cato_mq.bench.scaling.result import COLD_START_S, CONCURRENCY, TAIL_S, TIME_SCALE, PolicyRun
from cato_mq.fleet import launch, records

ENV = {
    "CATO_POOLS": "default", "CATO_WINDOW_S": "2", "CATO_HEARTBEAT_S": "0.2", "CATO_VISIBILITY_TIMEOUT_S": "10",
    "CATO_SCALE_TICK_S": "0.5", "CATO_SCALE_LEASE_S": "3", "CATO_SCALE_LEADER_TTL_S": "3",
    "CATO_SCALE_DEFAULT_MIN": "1", "CATO_SCALE_DEFAULT_MAX": "3", "CATO_SCALE_CALM_S": "6",
    "CATO_SCALE_DOWN_COOLDOWN_S": "6",
}


def policy_env(policy: str, factor: float) -> dict[str, str]:
    """The fleet's environment for a policy. cato+ is cato's scaling with cato+ routing and
    admission (CATO_ROUTING) in every process; ``fifo@N`` is a static fleet of N replicas
    (bounds pinned) behind one FIFO queue."""
    env = {**ENV, "CATO_SCALE_UPSCALE_DELAY_S": str(30.0 / factor), "CATO_SCALE_DOWNSCALE_DELAY_S": str(600.0 / factor)}
    if policy.startswith("fifo@"):
        n = policy.partition("@")[2]
        return {**env, "CATO_SCALE_POLICY": "cato", "CATO_ROUTING": "fifo", "CATO_SCALE_DEFAULT_MIN": n,
                "CATO_SCALE_DEFAULT_MAX": n}
    return {**env, "CATO_SCALE_POLICY": "cato" if policy == "cato+" else policy,
            "CATO_ROUTING": "cato+" if policy == "cato+" else "cato"}


def run_policy(policy: str, factor: float, logs: Path, work: Load, run: str = "1") -> PolicyRun:
    env = {**policy_env(policy, factor), **work.env}
    logs.mkdir(parents=True, exist_ok=True)
    profile = logs / "profile.json"
    profile.write_text(json.dumps({"cold_start_s": COLD_START_S}))
    with launch.LocalRedis() as server:
        import os

        saved = dict(os.environ)
        os.environ.update(env, CATO_REDIS_URL=server.url)
        cato_app.reset()
        procs = []
        client = redis.Redis.from_url(server.url, decode_responses=True)
        try:
            for host, devices in (("h1", "0,1"), ("h2", "0")):
                procs.append(launch.start_cli(server.url, [
                    "agent", "--host", host, "--devices", devices, "--platform", "cpu", "-c", str(CONCURRENCY),
                    "--time-scale", str(TIME_SCALE), "--profile", str(profile), "--log-dir", str(logs / policy),
                ], env, logs / f"{policy}-agent-{host}.log"))
            procs.append(launch.start_cli(server.url, ["provisioner"], env, logs / f"{policy}-provisioner.log"))
            procs.append(launch.start_cli(server.url, ["beat"], env, logs / f"{policy}-beat.log"))
            _wait(lambda: any(r.state == "ready" for r in records.read(client).replicas()), 60)
            return _measure(policy, run, client, work)
        finally:
            for p in reversed(procs):
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            launch.stop(procs, timeout_s=30)
            os.environ.clear()
            os.environ.update(saved)
            cato_app.reset()


def _wait(cond: Any, timeout: float) -> None:
    until = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > until:
            raise TimeoutError("fleet did not start")
        time.sleep(0.1)


def _measure(policy: str, run: str, client: redis.Redis, work: Load) -> PolicyRun:  # type: ignore[type-arg]
    from cato_mq import submit
    from cato_mq.bench.runtime import task_of

    tasks = [task_of(r) for r in work.requests]  # validated before the clock starts
    began = time.time()
    handles = []
    for r, task in zip(work.requests, tasks, strict=True):
        time.sleep(max(0.0, began + r.at - time.time()))  # the open-loop arrival schedule
        handles.append(submit(task, arrived_at=began + r.at))
    results = [r for h in handles if (r := _result(h)) is not None]
    end = began + work.span_s + TAIL_S
    time.sleep(max(0.0, end - time.time()))
    events = records.timeline(client)

    spans: dict[str, list[float]] = {}  # replica incarnation -> [requested, gone]
    live: dict[str, str] = {}
    for e in events:
        if e["state"] == "requested":
            key = f"{e['replica']}#{e['at']}"
            live[e["replica"]] = key
            spans[key] = [float(e["at"]), end]
        elif e["state"] == "gone" and e["replica"] in live:
            spans[live.pop(e["replica"])][1] = float(e["at"])
    replica_s = sum(max(0.0, min(b, end) - max(a, began)) for a, b in spans.values())
    busy = sum(n.ended_at - n.started_at for r in results for n in r.nodes)
    peak = _peak(spans)

    violating = sorted(n.ended_at for r in results for n in r.nodes if not n.met_deadline)
    threshold = 3  # ProvisionerConfig.up_violations
    reaction = load = None
    if len(violating) >= threshold:
        t0 = violating[threshold - 1]
        # the first replica added after the load began (the baseline may add it before t0:
        # then the reaction is negative, i.e. ahead of the violations)
        new = [k for k, (a, _) in sorted(spans.items(), key=lambda kv: kv[1][0]) if a >= began + 1.0]
        if new:
            name = new[0].split("#")[0]
            ready = [float(e["at"]) for e in events if e["replica"] == name and e["state"] == "ready"
                     and float(e["at"]) >= spans[new[0]][0]]
            starts = [n.started_at for r in results for n in r.nodes
                      if n.worker == name and n.started_at >= spans[new[0]][0]]
            if ready and starts:
                load = ready[0] - spans[new[0]][0]
                reaction = min(starts) - t0 - load
    return PolicyRun(policy, run, len(handles), sum(r.met_sla for r in results) / len(handles), reaction, load,
                   replica_s, busy / (replica_s * CONCURRENCY) if replica_s else 0.0, peak)


def _result(handle: Any) -> Any:
    """The request's result; None if it failed (a node past its timeout under overload):
    it counts as a request that missed its SLA."""
    from cato_mq.client import RequestFailed

    try:
        return handle.result(timeout=120)
    except RequestFailed:
        return None


def _peak(spans: dict[str, list[float]]) -> int:
    edges = sorted([(a, 1) for a, _ in spans.values()] + [(b, -1) for _, b in spans.values()])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak
