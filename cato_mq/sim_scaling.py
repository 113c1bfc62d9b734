"""The provisioner tick of the simulator: observations as ``beat/observe.py`` gathers them
from Redis, built from simulated state, then the *same* pure policy the beat runs
(``provisioner.decide`` for cato, ``queue_autoscaler.decide`` for the Ray Serve-style
baseline), and its orders carried out as ``beat/plan.py`` would: spawns cold-start, a
retire takes a starting replica first, else the ready one with the least in flight,
newest first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cato_mq import provisioner, queue_autoscaler
from cato_mq.provision_config import ProvisionerConfig
from cato_mq.provisioner import Observations, PoolObs, State
from cato_mq.sim_replica import SimReplica

POOL = "default"
Decide = Callable[[Observations, State, ProvisionerConfig], tuple[dict[str, int], State]]
POLICIES: dict[str, Decide] = {"cato": provisioner.decide, "queue_length": queue_autoscaler.decide}


@dataclass
class Window:
    """Per-window node and violation counters, read with the beat's sliding-window rule."""

    span: float
    counts: dict[int, list[int]] = field(default_factory=dict)

    def add(self, now: float, missed: bool) -> None:
        c = self.counts.setdefault(int(now // self.span), [0, 0])
        c[0] += 1
        c[1] += missed

    def sliding(self, now: float) -> tuple[float, float]:
        i = int(now // self.span)
        frac = now / self.span - i
        cur, prev = self.counts.get(i, [0, 0]), self.counts.get(i - 1, [0, 0])
        self.counts.pop(i - 2, None)
        return cur[0] + prev[0] * (1 - frac), cur[1] + prev[1] * (1 - frac)


def observe(
    replicas: list[SimReplica], window: Window, queued: int, queued_violated: int, now: float,
    free_devices: int, node_s: float, load_s: float,
) -> Observations:
    ready = [r for r in replicas if r.state == "ready"]
    nodes, misses = window.sliding(now)
    o = PoolObs(
        violations=round(misses + queued_violated), nodes=round(nodes), queued=queued, ready=len(ready),
        starting=sum(r.state == "starting" for r in replicas), draining=sum(r.state == "draining" for r in replicas),
        idle=sum(r.inflight == 0 for r in ready), inflight=sum(r.inflight for r in ready),
        slots=sum(r.slots for r in ready), fresh=sum(now - r.ready_at < window.span for r in ready),
        load_s=load_s, node_s=node_s,
    )
    return Observations(now=now, pools={POOL: o}, free_devices=free_devices, window_s=window.span)


def retire_order(replicas: list[SimReplica]) -> list[SimReplica]:
    """Which replicas go first when the pool shrinks (``beat.plan``'s ranking)."""
    live = [r for r in replicas if r.state in ("starting", "ready")]
    return sorted(live, key=lambda r: (r.state == "ready", r.inflight, -r.since))
