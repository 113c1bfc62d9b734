"""One simulated replica, and the requests and nodes (``Req``, ``Job``) it serves.

A replica has B batch slots (the worker's threads) and the sim engine's continuous-batching
timing (``EngineTiming.plan_step``: vLLM V1's chunked prefill), stepped in jumps.

The engine's step time depends only on how many requests decode and which prompt tokens
are prefilled in the step, so between two changes of the batch every step lasts the same.
Instead of one event per token the replica schedules one event at the next change: the end
of each step that prefills, or the step where the first running request finishes. A request arriving in between is
taken at the next step boundary, exactly when ``SimEngine._run`` would take it, so the
timing matches the runtime engine step for step at a cost per batch change, not per
token: what makes 1,000 replicas and 100,000 requests fit in minutes.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field

from cato_mq.engine.timing import EngineTiming
from cato_mq.graphs import Node

#: ``end_g`` of a node whose prompt is still being prefilled: it cannot finish yet.
UNFINISHED = 1 << 62


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
    long_work: bool = False  # cato+: more than short work left on its SLA path (``tiers.long_work``)
    started: float = 0.0
    first_at: float | None = None
    end_g: int = 0
    replica: SimReplica | None = None
    prefill_left: int = 0  # prompt tokens not prefilled yet, on the engine


@dataclass(eq=False, slots=True)
class SimReplica:
    name: str
    slots: int
    profile: EngineTiming
    scale: float  # like `cato-mq worker --time-scale`: every step takes this much longer
    since: float  # device taken (provisioned from here)
    #: host seconds per token streamed, on the engine's core (``SimConfig.host_s_per_token``)
    host_per_token_s: float = 0.0
    state: str = "starting"  # starting -> ready -> draining -> gone
    ready_at: float = math.inf
    inflight: int = 0  # nodes holding a slot (any step)
    reported: int = 0  # in flight as of its last heartbeat (what the router reads)
    own: deque[Job] = field(default_factory=deque)  # per-replica queue (round-robin)
    # engine
    g: int = 0  # engine steps completed
    running: list[Job] = field(default_factory=list)
    waiting: deque[Job] = field(default_factory=deque)
    arriving: list[Job] = field(default_factory=list)  # LLM nodes taken, one hop from the engine
    fresh: list[Job] = field(default_factory=list)  # admitted in the step now running
    next_t: float = math.inf  # the scheduled boundary (time, step count)
    next_g: int = 0
    version: int = 0  # bumped when the scheduled boundary moves: stale events are dropped
    cruise: tuple[float, int, float] | None = None  # (from time, from step, step seconds)
    busy_from: float | None = None
    busy: list[tuple[float, float]] = field(default_factory=list)

    @property
    def free(self) -> int:
        return self.slots - self.inflight if self.state == "ready" else 0

    @property
    def engine_load(self) -> int:
        return len(self.running) + len(self.waiting) + len(self.arriving)

    def hold(self, now: float) -> None:
        if self.inflight == 0:
            self.busy_from = now
        self.inflight += 1

    def release(self, now: float) -> None:
        self.inflight -= 1
        if self.inflight == 0 and self.busy_from is not None:
            self.busy.append((self.busy_from, now))
            self.busy_from = None

    def submit(self, job: Job, now: float) -> bool:
        """Queue an LLM node on the engine; True when the scheduled boundary moved."""
        self.arriving.remove(job)
        self.waiting.append(job)
        if self.next_t == math.inf:
            return self._plan(now)
        if self.cruise is not None:
            t0, g0, d = self.cruise
            j = math.floor((now - t0) / d) + 1  # the next boundary after now
            if g0 + j < self.next_g:
                self.cruise = None
                self._schedule(t0 + j * d, g0 + j)
                return True
        return False

    def charge(self, now: float, seconds: float) -> bool:
        """Host work on the engine's core (``SimConfig.host_s_per_node``): a busy engine's
        next boundary, and every step after it, comes ``seconds`` later; an idle engine
        loses nothing (the host ran in its idle time). True when the boundary moved."""
        if self.next_t == math.inf or seconds <= 0:
            return False
        if self.cruise is not None:
            t0, g0, d = self.cruise
            self.cruise = (t0 + seconds, g0, d)
        self._schedule(self.next_t + seconds, self.next_g)
        return True

    def boundary(self, now: float, g: int) -> tuple[list[Job], list[Job]]:
        """The step ending now: (jobs whose first token came, jobs that finished)."""
        self.g, self.cruise, self.next_t = g, None, math.inf
        first, self.fresh = self.fresh, []
        done = [j for j in self.running if j.end_g <= g]
        if done:
            self.running = [j for j in self.running if j.end_g > g]
        self._plan(now)
        return first, done

    def _plan(self, now: float) -> bool:
        """Schedule the next boundary: one step while prompts are being prefilled (each such
        step differs), else a cruise of identical decode steps to the first finish."""
        started = [j for j in self.running if j.prefill_left > 0]
        room = self.profile.max_num_seqs - len(self.running)
        if started or (self.waiting and room > 0):
            plan = self.profile.plan_step(len(self.running) - len(started), [j.prefill_left for j in started],
                                          [j.prompt_tokens for j in itertools.islice(self.waiting, room)],
                                          self._context())
            admit = [self.waiting.popleft() for _ in plan.admitted]
            for j in admit:
                j.prefill_left = j.prompt_tokens
            self.fresh = []
            for j, chunk in zip([*started, *admit], [*plan.started, *plan.admitted], strict=True):
                j.prefill_left -= chunk
                if j.prefill_left == 0:  # its first token ends this step, its last j.tokens - 1 later
                    j.end_g = self.g + j.tokens
                    self.fresh.append(j)
                else:
                    j.end_g = UNFINISHED
            self.running += admit
            tokens = len(self.running) - len(started) - len(admit) + len(self.fresh)
            self._schedule(now + plan.seconds * self.scale + self.host_per_token_s * tokens, self.g + 1)
            return True
        if self.running:
            k = min(j.end_g for j in self.running) - self.g
            # the contexts grow by a token a step, and a step's cost with them: k steps of the
            # mean step's cost end where k single steps would
            d = (self.profile.decode_s(len(self.running), self._context((k - 1) / 2)) * self.scale
                 + self.host_per_token_s * len(self.running))
            self.cruise = (now, self.g, d)
            self._schedule(now + k * d, self.g + k)
            return True
        return False

    def _context(self, ahead: float = 0.0) -> float:
        """Tokens of context the decoding nodes attend to ``ahead`` steps from now."""
        return sum(j.prompt_tokens + j.tokens - (j.end_g - self.g) + ahead
                   for j in self.running if not j.prefill_left)

    def _schedule(self, t: float, g: int) -> None:
        self.next_t, self.next_g = t, g
        self.version += 1

    def owed(self, job: Job) -> int:
        """Tokens a running node still has to produce."""
        return job.tokens if job.prefill_left else max(0, job.end_g - self.g)
