"""CATO's Resource Provisioner (Algorithm 2) as a pure policy: observations in, desired
replicas per pool out. The beat-side tick gathers the observations and carries out the
result; a simulator can call the same function.

Reading of Algorithm 2 (thresholds in ``ProvisionerConfig``):

* **Violations.** A window's violations are the nodes that finished past their slack in
  the last window *plus* the nodes queued right now as violated or at risk (the router
  found that no replica can meet their slack at the current queue). The queued part is
  the early signal: it counts a burst as soon as the queue outgrows the slack, before any
  of those nodes has finished late.
* **Up: when.** The violations reach ``up_violations`` and ``up_ratio`` of the window's
  nodes, *and* outnumber the idle replicas (with an idle replica, violations come from
  something more replicas cannot fix). Or, earlier, *predicted* violations: no replica is
  idle, the queue grew since the last tick, and at that growth it would take longer than
  a window to drain through the ready slots by the time a replica ordered now could
  serve (one measured load time away). A replica cannot help sooner than its cold start,
  so waiting for the router's at-risk verdict loses that much time to a burst. The
  window stands for the pool's latency horizon here, as it does for the violation
  counts; a standing queue (not growing) is left to the violation counts.
* **Up: how many** ("in proportion to the violations"). The deficit is the violations,
  or the whole queue if it is longer (the safe nodes queued behind the at-risk ones are
  the next to miss: at a burst's start the queue outgrows the at-risk count), projected
  one cold start ahead while nothing is starting yet. The proportion is measured, not a
  constant: a replica serves ``capacity = its batch slots x window / mean node time``
  nodes per window. Capacity on the way, i.e. replicas still starting and replicas ready
  for less than a window (the window's counts predate them), covers part of the deficit;
  the rest, ``ceil((deficit - on_the_way x capacity) / capacity)``, is ordered in one
  tick, at most ``max_step``. While the capacity on the way covers the deficit nothing
  more is ordered, which is what stops a pile-up during cold starts; a backlog that
  outgrows it gets more at the next tick, not a window later. Until a ready replica has
  reported its slots and the pool has a service-time estimate, ``violations_per_replica``
  stands in for capacity.
* **Down.** One replica at a time, after ``calm_s`` of calm (no violation, nothing queued,
  in-flight below ``down_utilization`` of the batch slots), at least ``down_cooldown_s``
  after the pool last changed, and never while a replica starts or drains.
* **Bounds.** Per-pool minimum and maximum; a pool below its minimum (e.g. after a host
  died) is refilled at once.
* **Scarce devices.** Growth beyond the free devices takes one replica per tick from the
  pool with the lowest eviction score (``policy.eviction``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from cato_mq.policy import eviction
from cato_mq.policy.provisioner_config import ProvisionerConfig


@dataclass(frozen=True, slots=True)
class PoolObs:
    """One pool at one tick."""

    violations: int = 0  # slack violations in the last window + nodes queued violated/at risk
    nodes: int = 0  # nodes finished in the last window
    queued: int = 0  # messages waiting in the pool's tier queues
    ready: int = 0
    starting: int = 0  # requested or loading: capacity on the way
    draining: int = 0
    idle: int = 0  # ready replicas with nothing in flight
    inflight: int = 0
    slots: int = 0  # batch slots of the ready replicas
    fresh: int = 0  # ready replicas that became ready less than a window ago
    load_s: float = 0.0  # measured model load time (eviction feature)
    node_s: float = 0.0  # mean node service time (replica capacity, eviction feature)

    @property
    def current(self) -> int:
        """Replicas that serve or will serve: draining ones are already leaving."""
        return self.ready + self.starting


@dataclass(frozen=True, slots=True)
class Observations:
    now: float
    pools: dict[str, PoolObs]
    free_devices: int
    window_s: float = 10.0


@dataclass(frozen=True, slots=True)
class PoolState:
    last_change: float = -math.inf
    calm_since: float | None = None
    #: the queue length at the previous tick, for its growth
    queued: int = 0
    seen_at: float | None = None
    #: queue-length baseline: the direction it wants to move and since when
    want: int = 0
    want_since: float | None = None


State = dict[str, PoolState]


def capacity(o: PoolObs, window_s: float, c: ProvisionerConfig) -> float:
    """Nodes one replica serves in a window: its batch slots x window / mean node time."""
    if o.ready and o.slots and o.node_s > 0:
        return o.slots / o.ready * window_s / o.node_s
    return c.violations_per_replica  # nothing measured yet


def projected_queue(o: PoolObs, s: PoolState, now: float) -> float:
    """The queue one cold start from now if it keeps growing as since the last tick. While
    replicas start, the growth is the one they were ordered for: not projected again."""
    if s.seen_at is None or now <= s.seen_at or o.starting:
        return float(o.queued)
    return o.queued + max(0.0, (o.queued - s.queued) / (now - s.seen_at)) * o.load_s


def _up(o: PoolObs, s: PoolState, now: float, window_s: float, c: ProvisionerConfig) -> int:
    """Replicas to add now (Algorithm 2)."""
    if o.current == 0 and o.queued > 0:
        return 1  # work waits and nobody serves it: no window will ever show violations
    v, ahead = o.violations, projected_queue(o, s, now)
    violated = v >= c.up_violations and v >= c.up_ratio * o.nodes and v > o.idle
    # predicted violations: the queue grows, and a replica ordered now serves only after
    # a cold start; if by then the queue would take longer than a window to drain through
    # the ready slots, its tail will miss
    early = (
        ahead > o.queued >= c.up_violations and o.idle == 0 and o.slots > 0
        and ahead * o.node_s / o.slots > window_s
    )
    if not (violated or early):
        return 0
    per = capacity(o, window_s, c)
    # the safe nodes queued behind the at-risk ones are the next to miss: once the pool
    # is short, the whole (projected) queue is work it is not keeping up with
    uncovered = max(v, ahead) - (o.starting + o.fresh) * per
    return max(0, min(math.ceil(uncovered / per), c.max_step))


def _calm(o: PoolObs, c: ProvisionerConfig) -> bool:
    used = o.inflight / o.slots if o.slots else 0.0
    return o.violations == 0 and o.queued == 0 and used < c.down_utilization


def decide_pool(
    pool: str, o: PoolObs, s: PoolState, now: float, c: ProvisionerConfig, window_s: float = 10.0
) -> tuple[int, PoolState]:
    lo, hi = c.min_for(pool), c.max_for(pool)
    calm_since = (s.calm_since if s.calm_since is not None else now) if _calm(o, c) else None
    add = _up(o, s, now, window_s, c)
    s = replace(s, calm_since=calm_since, queued=o.queued, seen_at=now)
    if o.current < lo:
        return lo, replace(s, last_change=now)
    if add and o.current < hi:
        return min(hi, o.current + add), replace(s, last_change=now, calm_since=None)
    if o.current > hi:
        return hi, replace(s, last_change=now)
    can_retire = (
        calm_since is not None and o.current > lo and o.starting == 0 and o.draining == 0
        and now - calm_since >= c.calm_s and now - s.last_change >= c.down_cooldown_s
    )
    if can_retire:
        return o.current - 1, replace(s, last_change=now, calm_since=now)
    return o.current, s


#: One pool's decision: (pool, its observations, its state, the whole tick, config).
PoolDecide = Callable[[str, PoolObs, PoolState, Observations, ProvisionerConfig], tuple[int, PoolState]]


def decide_each(
    obs: Observations, state: State, config: ProvisionerConfig, decide_pool: PoolDecide
) -> tuple[dict[str, int], State]:
    """A per-pool policy over every pool, then the device limit: what every scaling policy
    does around its own rule."""
    desired: dict[str, int] = {}
    new: State = {}
    for pool, o in obs.pools.items():
        desired[pool], new[pool] = decide_pool(pool, o, state.get(pool, PoolState()), obs, config)
    return fit_devices(desired, obs, config), new


def decide(obs: Observations, state: State, config: ProvisionerConfig) -> tuple[dict[str, int], State]:
    """Algorithm 2 for every pool, then the device limit. Pure."""
    return decide_each(
        obs, state, config, lambda pool, o, s, tick, c: decide_pool(pool, o, s, tick.now, c, tick.window_s)
    )


def fit_devices(desired: dict[str, int], obs: Observations, config: ProvisionerConfig) -> dict[str, int]:
    """Trim growth to the free devices; if a pool still needs one, the pool with the lowest
    eviction score among those that do not grow and sit above their minimum gives one up."""
    out = dict(desired)
    growth = {p: n - obs.pools[p].current for p, n in desired.items() if n > obs.pools[p].current}
    # a draining replica's device is free soon (often freed for this very need): counting it
    # keeps one eviction from being followed by another while the first still drains
    free = obs.free_devices + sum(o.draining for o in obs.pools.values())
    unmet = False
    # the most violated pools get the free devices first
    for pool in sorted(growth, key=lambda p: -obs.pools[p].violations):
        granted = min(growth[pool], free)
        free -= granted
        out[pool] = obs.pools[pool].current + granted
        unmet = unmet or granted < growth[pool]
    if not unmet:
        return out
    donors = {
        p: _features(p, o, obs.window_s, config)
        for p, o in obs.pools.items()
        if p not in growth and o.ready > config.min_for(p) and o.draining == 0 and out[p] >= o.current
    }
    victim = eviction.pick_victim(donors)
    if victim is not None:
        out[victim] = obs.pools[victim].current - 1
    return out


def _features(pool: str, o: PoolObs, window_s: float, c: ProvisionerConfig) -> eviction.PoolFeatures:
    return eviction.PoolFeatures(
        load_s=o.load_s, sensitivity=c.sensitivity_for(pool), node_s=o.node_s,
        recent_rate=o.nodes / window_s, expected=o.queued + o.inflight, replicas=max(1, o.ready),
    )
