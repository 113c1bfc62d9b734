"""Where a published node waits and which replica takes it, per system.

* ``Tiered`` (cato, cato+, fifo): the runtime's pool queues. Workers pull when a batch
  slot frees, strictly violated > at_risk > safe (> best_effort for cato+), FIFO within a
  tier, where cato+ serves nodes of TTFT requests before those of E2E requests, and short
  E2E work before long (``tiers.message_priority``: one FIFO per message priority, as Redis
  has one list). A node published while several replicas have free slots goes to the one
  that has waited longest (Redis serves the client blocked longest in ``BRPOP``). ``fifo``
  is the same with one tier: what the runtime does with ``CATO_ROUTING=fifo``.
* ``PowerOfTwo`` (queue-length, Ray Serve's router): one pending FIFO; a node goes to the
  less loaded (in flight) of two replicas drawn at random among those with a free slot,
  else waits for the first slot to free.
* ``RoundRobin``: each node is pushed to the next replica in turn and waits in that
  replica's own FIFO, whatever the others' load.
"""

from __future__ import annotations

import random
from collections import deque

from cato_mq.policy.tiers import PRIORITY_STEPS, Tier, message_priority
from cato_mq.sim.replica import Job, SimReplica


class FreeSet:
    """Replicas with a free slot: oldest-first order and O(1) random draws."""

    def __init__(self) -> None:
        self._order: dict[SimReplica, None] = {}
        self._items: list[SimReplica] = []
        self._pos: dict[SimReplica, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def add(self, r: SimReplica) -> None:
        if r not in self._pos:
            self._pos[r] = len(self._items)
            self._items.append(r)
            self._order[r] = None

    def discard(self, r: SimReplica) -> None:
        i = self._pos.pop(r, None)
        if i is None:
            return
        last = self._items.pop()
        if last is not r:
            self._items[i] = last
            self._pos[last] = i
        del self._order[r]

    def members(self) -> list[SimReplica]:
        return self._items

    def oldest(self) -> SimReplica | None:
        return next(iter(self._order), None)

    def two(self, rng: random.Random) -> SimReplica | None:
        if not self._items:
            return None
        a, b = rng.choice(self._items), rng.choice(self._items)
        return a if a.inflight <= b.inflight else b


class Tiered:
    """One FIFO per message priority, served in priority order, as the Redis lists are."""

    def __init__(self, within_tier: bool = False) -> None:
        self.queues: dict[int, deque[Job]] = {p: deque() for p in PRIORITY_STEPS}
        # looked up on every put, take and routing decision: built once (cato+: TTFT, then
        # short E2E work, then long, within a tier)
        self._step = {(t.value, ttft, long): message_priority(t, ttft, within_tier, long)
                      for t in Tier for ttft in (True, False) for long in (True, False)}
        self._tier_steps = {t.value: sorted({p for (tier, _, _), p in self._step.items() if tier == t.value})
                            for t in Tier}

    def _priority(self, job: Job) -> int:
        return self._step[job.tier, job.req.metric == "ttft", job.long_work]

    def put(self, job: Job) -> None:
        self.queues[self._priority(job)].append(job)

    def count(self, tier: str) -> int:
        return sum(len(self.queues[p]) for p in self._tier_steps[tier])

    def total(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def head(self, limit: int) -> list[Job]:
        """The first ``limit`` waiting nodes in service order."""
        out: list[Job] = []
        for q in self.queues.values():  # built in priority order
            for job in q:
                if len(out) >= limit:
                    return out
                out.append(job)
        return out

    def take(self, job: Job) -> None:
        q = self.queues[self._priority(job)]
        if q[0] is job:
            q.popleft()
        else:
            q.remove(job)

    def move(self, job: Job, tier: str) -> None:
        self.take(job)
        job.tier = tier
        self.put(job)


class RoundRobin:
    def __init__(self) -> None:
        self.turn = 0

    def pick(self, replicas: list[SimReplica]) -> SimReplica:
        r = replicas[self.turn % len(replicas)]
        self.turn += 1
        return r
