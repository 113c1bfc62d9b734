"""The provisioner tick of the simulator: observations as ``beat.gather`` reads them from
Redis, built from simulated state (counted with the same sliding-window rule,
``policy.window``), then the *same* pure policy the beat runs (``policy.scaling``), and its
orders carried out as ``beat.plan`` would: spawns cold-start, retires follow the same
ranking (``policy.placement``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cato_mq.policy import placement, window
from cato_mq.policy.provisioning import Observations, PoolObs
from cato_mq.sim.replica import SimReplica

POOL = "default"


@dataclass
class Window:
    """Per-window node and violation counters, read with the beat's sliding-window rule."""

    span: float
    counts: dict[int, list[int]] = field(default_factory=dict)

    def add(self, now: float, missed: bool) -> None:
        c = self.counts.setdefault(window.position(now, self.span)[0], [0, 0])
        c[0] += 1
        c[1] += missed

    def sliding(self, now: float) -> tuple[float, float]:
        i, frac = window.position(now, self.span)
        cur, prev = self.counts.get(i, [0, 0]), self.counts.get(i - 1, [0, 0])
        self.counts.pop(i - 2, None)
        return window.sliding(cur[0], prev[0], frac), window.sliding(cur[1], prev[1], frac)


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
    """Which replicas go first when the pool shrinks (``policy.placement``'s ranking)."""
    live = [r for r in replicas if r.state in ("starting", "ready")]
    return placement.retire_order(live, lambda r: r.inflight)
