"""Discrete-event simulation of a cato-mq fleet (heapq, pure Python, one pool).

It runs the runtime's own pure policies on simulated observations: ``slack.budgets`` over
``estimates.graph_costs`` at arrival (with the same EWMA estimates the ledger keeps),
``tiers.tier_for`` (``expected_wait`` + ``decide_tier``) at every publish,
``admission`` for cato+, and the scaling policy (``policy.scaling``) at every
tick, with the engine's timing model (``EngineTiming.step_s``, see ``sim.replica``).

Events: an arrival; a node's publish (the client's, ``submit_s`` after arrival; later
nodes are published by the worker that ran the previous one, when it ends and before its
slot frees, as Celery sends the next link before the ack); a node reaching its worker's
thread (``hop_s`` after a slot took it); an engine step boundary (first tokens, finished
LLM nodes); the end of a CPU node; a replica's heartbeat (the router reads in-flight counts
as of the last one, and each publisher reuses its pool snapshot for ``router_cache_s``, as
the runtime does); a replica ready after its cold start; a provisioner tick. Systems and
what they differ in are listed in ``SYSTEMS`` (``sim.model``).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from typing import Any

from cato_mq.bench.scoring import Span
from cato_mq.bench.workload import Request
from cato_mq.graphs import graph_for
from cato_mq.policy.estimates import DEFAULTS, ewma, graph_costs
from cato_mq.policy.provisioning import State
from cato_mq.policy.scaling import POLICIES
from cato_mq.policy.slack import budgets
from cato_mq.policy.tiers import PoolSnapshot, Tier, long_work, tier_for
from cato_mq.sim import admission
from cato_mq.sim.dispatch import FreeSet, RoundRobin, Tiered
from cato_mq.sim.model import (
    ARRIVE,
    BEAT,
    BEGIN,
    CPU_DONE,
    PUBLISH,
    READY,
    STEP,
    SYSTEMS,
    TICK,
    SimConfig,
    SimResult,
    outcome,
)
from cato_mq.sim.replica import Job, Req, SimReplica
from cato_mq.sim.scaling import POOL, Window, observe, retire_order


class Simulation:
    def __init__(self, cfg: SimConfig) -> None:
        if cfg.system not in SYSTEMS:
            raise ValueError(f"unknown system {cfg.system!r}; choose from {', '.join(SYSTEMS)}")
        self.cfg = cfg
        self.queueing, policy = SYSTEMS[cfg.system]
        self.decide = POLICIES[policy] if policy and cfg.scaling else None
        self.rng = random.Random(cfg.seed)
        self.heap: list[tuple[float, int, int, object, int]] = []
        self.seq = itertools.count()
        self.replicas: list[SimReplica] = []  # not gone yet
        self._all: list[SimReplica] = []
        self.free = FreeSet()
        self.queue = Tiered(within_tier=self.queueing == "admission")
        self.rr = RoundRobin()
        # engine estimates stretch with the time scale; retrieval and validation are CPU work
        engine = {k: v * cfg.time_scale for k, v in cfg.profile.estimates().items()}
        self.est = {**DEFAULTS, **engine, "node": DEFAULTS["node"] * cfg.time_scale}
        self.window = Window(10.0)
        self.state: State = {}
        self.spans: list[Span] = []
        self.timeline: list[tuple[float, int, int]] = []
        self.route_ns: list[int] = []
        self.pick_ns: list[int] = []
        self.tiers: dict[str, int] = {}
        self.snapshots: dict[SimReplica | None, PoolSnapshot] = {}
        self.decide_ns: list[int] = []
        self.names = itertools.count()
        self.inflight = self.reported = self._ready_count = self._slots = 0
        for _ in range(cfg.replicas):
            self._ready(self._spawn(0.0), 0.0)

    # -- plumbing
    def push(self, t: float, kind: int, obj: object, version: int = 0) -> None:
        heapq.heappush(self.heap, (t, next(self.seq), kind, obj, version))

    def _spawn(self, now: float) -> SimReplica:
        r = SimReplica(f"r{next(self.names)}", self.cfg.slots, self.cfg.profile, self.cfg.time_scale, now,
                       host_per_token_s=self.cfg.host_s_per_token)
        self.replicas.append(r)
        self._all.append(r)
        return r

    def _ready(self, r: SimReplica, now: float) -> None:
        if r.state != "starting":
            return
        r.state, r.ready_at = "ready", now
        self._ready_count += 1
        self._slots += r.slots
        self.free.add(r)
        if self.cfg.heartbeat_s is not None:  # beats at its own phase, like a real worker
            self.push(now + self.rng.random() * self.cfg.heartbeat_s, BEAT, r)

    def beat(self, r: SimReplica, now: float) -> None:
        if r.state != "ready":
            return
        self.reported += r.inflight - r.reported
        r.reported = r.inflight
        assert self.cfg.heartbeat_s is not None
        self.push(now + self.cfg.heartbeat_s, BEAT, r)

    def _leave(self, r: SimReplica, now: float) -> None:
        """Retire: a starting replica goes at once, a ready one drains its nodes first."""
        if r.state == "ready":
            self._ready_count -= 1
            self._slots -= r.slots
            self.reported -= r.reported  # a draining replica leaves the router's count at once
        self.free.discard(r)
        r.state = "draining"
        if r.inflight == 0 and not r.engine_load:
            self._gone(r, now)

    def _gone(self, r: SimReplica, now: float) -> None:
        r.state = "gone"
        self.free.discard(r)
        self.spans.append(Span(r.name, r.since, now))
        self.replicas.remove(r)

    # -- requests
    def arrive(self, req: Req, now: float) -> None:
        plan = budgets(now, req.deadline - now, graph_costs(self.est, req.graph, req.max_tokens, req.metric))
        req.jobs = [
            Job(req, i, n, b.deadline, b.expect_s, req.prompt_tokens, req.max_tokens if n.step == "llm" else 0)
            for i, (n, b) in enumerate(zip(req.graph, plan, strict=True))
        ]
        self.push(now + self.cfg.submit_s, PUBLISH, req.jobs[0])

    def send(self, job: Job, now: float) -> None:
        """Route and enqueue at the publisher: the client, or the worker that still holds
        the previous node's slot (Celery publishes the next link before the ack, so the
        link is queued before that slot frees)."""
        t0 = time.perf_counter_ns() if self.cfg.time_decisions else 0
        job.tier = self.route(job, now)
        if t0:
            self.route_ns.append(time.perf_counter_ns() - t0)
        key = f"{job.req.kind} {job.node.step} {job.tier}"
        self.tiers[key] = self.tiers.get(key, 0) + 1
        self.publish(job, now)

    def publish(self, job: Job, now: float) -> None:
        if self.queueing == "rr":
            r = self.rr.pick([x for x in self.replicas if x.state == "ready"])
            if r.free > 0:
                self.start(job, r, now)
            else:
                r.own.append(job)
            return
        self.queue.put(job)
        self.pump(now)

    def route(self, job: Job, now: float) -> str:
        if self.queueing not in ("tiers", "admission"):
            return "safe"
        q = self.queue
        if self.queueing == "admission":  # cato+, as the runtime's router: one estimate of the work left
            rest = admission.alone_s(self, job.req, job.index)
            if admission.lost(job, now, rest):
                return "best_effort"
            job.long_work = job.req.metric != "ttft" and long_work(rest, self.est)
        # the publisher's router reads the pool at most once per cache period (per process:
        # the client for first nodes, the worker of the previous node for the others)
        who = job.req.jobs[job.index - 1].replica if job.index else None
        hit = self.snapshots.get(who)
        if hit is None or now - hit.read_at >= self.cfg.router_cache_s:
            hit = PoolSnapshot(
                {Tier.violated: q.count("violated"), Tier.at_risk: q.count("at_risk"), Tier.safe: q.count("safe")},
                self._ready_count, self._slots, self.reported if self.cfg.heartbeat_s else self.inflight,
                dict(self.est), now,
            )
            self.snapshots[who] = hit
        return str(tier_for(hit, job.deadline, job.expect, now))


    # -- dispatch
    def pump(self, now: float) -> None:
        """Hand waiting nodes to replicas with free slots until either runs out."""
        while self.queue.total() and len(self.free):
            r = self.free.two(self.rng) if self.queueing == "p2c" else self.free.oldest()
            assert r is not None
            job = self.pick(r, now)
            if job is None:
                # admission refused at the longest-waiting replica: the least loaded one
                # gives the most speed per request; if it refuses too, nothing fits now
                r = min(self.free.members(), key=lambda x: x.engine_load)
                job = self.pick(r, now)
                if job is None:
                    return
            self.queue.take(job)
            self.start(job, r, now)

    def pick(self, r: SimReplica, now: float) -> Job | None:
        if self.queueing != "admission":
            return self.queue.head(1)[0]
        if not self.cfg.time_decisions:
            return admission.pick(self, r, now)
        t0 = time.perf_counter_ns()
        job = admission.pick(self, r, now)
        self.pick_ns.append(time.perf_counter_ns() - t0)
        return job

    def start(self, job: Job, r: SimReplica, now: float) -> None:
        r.hold(now)
        self.inflight += 1
        if r.free == 0:
            self.free.discard(r)
        else:  # it BRPOPs again: to the back of the line of waiting replicas
            self.free.discard(r)
            self.free.add(r)
        # the message reaches the worker's thread one hop after the slot took it
        job.started, job.replica = now + self.cfg.hop_s, r
        if r.charge(now, self.cfg.host_s_per_node):
            self.push(r.next_t, STEP, r, r.version)
        if job.node.step == "llm":
            r.arriving.append(job)  # admission counts it from now on
            self.push(job.started, BEGIN, job)
        else:
            self.push(job.started + self.cfg.cpu_s.get(job.node.step, 0.0), CPU_DONE, job)

    def begin(self, job: Job, now: float) -> None:
        r = job.replica
        assert r is not None
        if r.submit(job, now):
            self.push(r.next_t, STEP, r, r.version)

    # -- completions
    def step(self, r: SimReplica, version: int, now: float) -> None:
        if version != r.version or r.state == "gone":
            return
        first, done = r.boundary(now, r.next_g)
        if r.next_t != math.inf:
            self.push(r.next_t, STEP, r, r.version)
        for job in first:
            job.first_at = now
            if job.node.streams and job.req.first_at is None:
                job.req.first_at = now
        for job in done:
            self.finish(job, now)
        if first and not done and self.queueing == "admission" and r.free > 0:
            self.pump(now)  # a decided TTFT no longer constrains admission

    def finish(self, job: Job, now: float) -> None:
        r, req = job.replica, job.req
        assert r is not None
        dur = now - job.started
        if job.node.step == "llm" and job.first_at is not None:
            self._learn("llm:fixed", job.first_at - job.started)
            self._learn("llm:per_token", (now - job.first_at) / max(1, job.tokens - 1))
        else:
            self._learn(f"{job.node.step}:fixed", dur)
        self._learn("node", dur)
        counted = job.first_at if job.node.first_token_decides(req.metric) else now
        missed = counted is None or counted > job.deadline
        req.misses += missed
        self.window.add(now, missed)
        if job.index + 1 < len(req.jobs):
            self.send(req.jobs[job.index + 1], now)
        else:
            req.end_at = now
        r.release(now)
        self.inflight -= 1
        if r.state == "draining":
            if r.inflight == 0 and not r.engine_load:
                self._gone(r, now)
        elif self.queueing == "rr":
            if r.own:
                self.start(r.own.popleft(), r, now)
        else:
            self.free.add(r)
            self.pump(now)

    def _learn(self, name: str, observed: float) -> None:
        self.est[name] = ewma(self.est.get(name), observed)

    # -- scaling
    def tick(self, now: float) -> None:
        assert self.decide is not None and self.cfg.scaling is not None
        q = self.queue
        live = sum(r.state in ("starting", "ready") for r in self.replicas)
        obs = observe(
            self.replicas, self.window, q.total(), q.count("violated") + q.count("at_risk") + q.count("best_effort"),
            now, max(0, self.cfg.max_replicas - len(self.replicas)), self.est["node"], self.cfg.cold_start_s,
        )
        t0 = time.perf_counter_ns()
        desired, self.state = self.decide(obs, self.state, self.cfg.scaling)
        self.decide_ns.append(time.perf_counter_ns() - t0)
        want = desired[POOL]
        for _ in range(want - live):
            self.push(now + self.cfg.cold_start_s, READY, self._spawn(now))
        for r in retire_order(self.replicas)[: max(0, live - want)]:
            self._leave(r, now)
        self.timeline.append((now, self._ready_count, sum(r.state == "starting" for r in self.replicas)))

    # -- the run
    def _handle(self, kind: int, obj: Any, version: int, t: float) -> None:
        if kind == STEP:
            self.step(obj, version, t)
        elif kind == PUBLISH:
            self.send(obj, t)
        elif kind == BEGIN:
            self.begin(obj, t)
        elif kind == CPU_DONE:
            self.finish(obj, t)
        elif kind == ARRIVE:
            self.arrive(obj, t)
        elif kind == BEAT:
            self.beat(obj, t)
        elif kind == READY:
            self._ready(obj, t)
            self.pump(t)
        else:
            self.tick(t)

    def run(self, requests: list[Request]) -> SimResult:
        began = time.perf_counter()
        last = max((r.at for r in requests), default=0.0)
        horizon = last + self.cfg.tail_s
        reqs = []
        for w in requests:
            req = Req(w.kind.value, w.metric, w.at, w.at + w.sla_s, graph_for(w.kind), w.max_tokens, w.prompt_tokens)
            reqs.append(req)
            self.push(w.at, ARRIVE, req)
        if self.decide is not None and self.cfg.scaling is not None:
            tick_s = self.cfg.scaling.tick_s
            for k in range(1, int(horizon / tick_s) + 1):
                self.push(k * tick_s, TICK, None)
        events = 0
        while self.heap and self.heap[0][0] <= horizon:
            t, _, kind, obj, version = heapq.heappop(self.heap)
            events += 1
            self._handle(kind, obj, version, t)
        for r in list(self.replicas):
            if r.busy_from is not None:
                r.busy.append((r.busy_from, horizon))
            self.spans.append(Span(r.name, r.since, horizon))
        busy = [Span(r.name, a, b) for r in self._all for a, b in r.busy]
        return SimResult(
            [outcome(q) for q in reqs], self.spans, busy, self.timeline, self.route_ns, self.decide_ns,
            events, time.perf_counter() - began, dict(sorted(self.tiers.items())), dict(self.est), self.pick_ns,
        )


def simulate(requests: list[Request], cfg: SimConfig) -> SimResult:
    return Simulation(cfg).run(requests)
