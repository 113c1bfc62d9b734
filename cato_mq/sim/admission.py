"""cato+ in the simulator: what ``policy.admission`` needs, gathered from simulated state.

* **lost** (at publish): the node's request is decided (a TTFT request whose first token
  streamed) or hopeless (its SLA is out of reach even alone, by the engine profile's
  speed with nobody else on the engine): it goes to the best-effort tier.
* **pick** (a replica has a free slot): the first of the first ``admission.WINDOW`` waiting
  nodes, in tier order, that the replica's engine can take while still giving every
  request on it the speed its deadline needs, and whose prefill delays no first token past
  its TTFT deadline (``prefill_at``: the step that would prefill it, from the replica's
  schedule). A waiting node that has become hopeless is demoted on the way. Best effort
  runs only when no other node waits and one more request makes no admitted one late.
  A node no replica can take stays in the shared queue, where the next replica with room
  finds it: the runtime's gate hands such a node back to the head of its queue
  (``workers.gate``) instead of holding it, and that worker's pops then pass over LLM
  nodes to take nodes of other steps until its engine has room (``state.hold``).
  (The runtime weighs one LLM node per pop, the head; this window of 20 is SABER's.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

from cato_mq.policy import admission
from cato_mq.sim.dispatch import Tiered
from cato_mq.sim.model import SimConfig
from cato_mq.sim.replica import Job, Req, SimReplica


class Simulation(Protocol):
    """What admission reads of the running simulation (``simulator.Simulation``)."""

    @property
    def cfg(self) -> SimConfig: ...
    @property
    def est(self) -> dict[str, float]: ...
    @property
    def queue(self) -> Tiered: ...


def alone_s(sim: Simulation, req: Req, index: int) -> float:
    """Seconds the rest of ``req`` from node ``index`` takes with the engine to itself, up
    to what its SLA counts (the first token under TTFT)."""
    p, s, total = sim.cfg.profile, sim.cfg.time_scale, 0.0
    for n in req.graph[index:]:
        if n.step != "llm":
            total += sim.est.get(f"{n.step}:fixed", 0.0)
            continue
        total += p.step_s(0, req.prompt_tokens) * s
        if n.first_token_decides(req.metric):
            break
        total += (req.max_tokens - 1) * p.decode_s(1) * s
    return total


def lost(job: Job, now: float, rest_s: float) -> bool:
    """Its request's SLA is decided, or out of reach even alone (``rest_s``: ``alone_s``)."""
    req = job.req
    if req.metric == "ttft" and req.first_at is not None:
        return True
    return admission.hopeless(now, req.deadline, rest_s)


def need(job: Job, owed: int, now: float) -> float:
    """Tokens/s the node needs against its deadline (``admission.need``)."""
    return admission.need(now, job.deadline, owed, job.node.first_token_decides(job.req.metric),
                          job.first_at is not None)


def ttft_deadline(job: Job) -> float | None:
    """The node's deadline if its first token is what its SLA counts."""
    return job.deadline if job.node.first_token_decides(job.req.metric) and job.first_at is None else None


def prefill_at(r: SimReplica, now: float, pending: Sequence[Job]) -> Callable[[int], float]:
    """When the engine's next prefill step would end with ``tokens`` more prompt tokens in
    it, beside ``pending``: the nodes waiting for the engine or on their way to it. Jobs
    submitted now join the step after the current one: that is the rest of a prefill step
    under way, or one decode step while the batch cruises."""
    p, s = r.profile, r.scale
    if r.next_t < math.inf and r.cruise is None:
        start = max(0.0, r.next_t - now)
    else:
        start = p.decode_s(len(r.running)) * s if r.running else 0.0
    # ahead of a new prompt: what is left of prompts under way, then the pending ones (V1
    # prefills in queue order, a budget a step: ``EngineTiming.prefill_done_s``)
    ahead = sum(j.prefill_left for j in r.running) + sum(j.prompt_tokens for j in pending)
    return lambda tokens: now + start + p.prefill_done_s(len(r.running), ahead, tokens) * s


def pick(sim: Simulation, r: SimReplica, now: float) -> Job | None:
    def speed(n: int) -> float:
        return 1.0 / (r.profile.decode_s(n) * r.scale)

    pending = [*r.waiting, *r.arriving]  # not on the engine yet: in its next prefill step
    running = [need(j, r.owed(j), now) for j in r.running] + [need(j, j.tokens, now) for j in pending]
    alone = speed(1)
    at = prefill_at(r, now, pending)
    without = at(0)
    firsts = [d for j in pending if (d := ttft_deadline(j)) is not None]

    def fits(job: Job, own: float | None) -> bool:
        return admission.prefill_fits(without, at(job.prompt_tokens), own, firsts)
    candidates: list[Job] = []
    needs: list[float] = []
    first_token: list[bool] = []  # its SLA is its first token (``admission.choose``)
    for job in sim.queue.head(admission.WINDOW):
        if job.tier == "best_effort":
            break
        if job.node.step != "llm":
            return job  # no engine time: never slows anyone
        n = need(job, job.tokens, now)
        if n > alone or lost(job, now, alone_s(sim, job.req, job.index)):
            sim.queue.move(job, "best_effort")
            continue
        own = ttft_deadline(job)
        candidates.append(job)
        first_token.append(own is not None)
        needs.append(n if fits(job, own) else math.inf)  # inf: this engine cannot take it now
    i = admission.choose(needs, running, speed, first_token)
    if i is not None:
        return candidates[i]
    if candidates or sim.queue.total() > sim.queue.count("best_effort"):
        return None
    best = sim.queue.head(1)
    if best and (best[0].node.step != "llm" or (
        fits(best[0], None) and admission.choose([0.0], running, speed) is not None
    )):
        return best[0]
    return None
