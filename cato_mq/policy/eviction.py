"""Which pool gives up a device when every device is busy: a context-aware keep score in
the spirit of CACE, instead of least-recently-used. Pure.

``keep_score`` is a sum of five terms, each squashed to [0, 1) by ``x / (x + ref)`` so no
single factor dominates and doubling a large value adds little:

* **load time** (seconds to load the model): evicting an expensive model costs that
  much again when its demand returns, during which its requests wait;
* **latency sensitivity** (configured, 1 = interactive TTFT work): a cold start is felt
  by a user who is typing, not by a batch translation;
* **expected service length** (mean node seconds, which grows with output length): a
  queue waits in proportion to service time, so losing a replica of a long-running pool
  adds more waiting per queued request;
* **recent demand** (nodes per second per replica over the last window): LRU's signal,
  as a rate rather than a timestamp;
* **expected demand** (queued + in-flight per replica): work already waiting is demand we
  know is coming, the closest thing to CACE's future window.

**Direction: higher score = more worth keeping; the pool with the LOWEST score gives up a
replica.** Demand terms are per replica, because what a pool loses is one replica's share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: Reference points where a term reaches 0.5. A 30 s load is a typical 7B model from
#: local disk; 1 s is a typical node; one node per second per replica is busy for a
#: small model; two waiting requests per replica is Ray Serve's target load.
LOAD_REF_S = 30.0
NODE_REF_S = 1.0
RATE_REF = 1.0
EXPECTED_REF = 2.0


@dataclass(frozen=True, slots=True)
class Weights:
    #: Load time and sensitivity decide what an eviction *costs*; demand decides how
    #: *likely* that cost is paid, so each side gets about half the weight.
    load: float = 1.0
    sensitivity: float = 1.0
    length: float = 0.5
    recent: float = 1.0
    expected: float = 1.5


@dataclass(frozen=True, slots=True)
class PoolFeatures:
    load_s: float
    sensitivity: float
    node_s: float
    recent_rate: float
    expected: float
    replicas: int = 1


def _squash(x: float, ref: float) -> float:
    return x / (x + ref) if x > 0 else 0.0


def keep_score(f: PoolFeatures, w: Weights = Weights()) -> float:
    per = max(1, f.replicas)
    return (
        w.load * _squash(f.load_s, LOAD_REF_S)
        + w.sensitivity * f.sensitivity
        + w.length * _squash(f.node_s, NODE_REF_S)
        + w.recent * _squash(f.recent_rate / per, RATE_REF)
        + w.expected * _squash(f.expected / per, EXPECTED_REF)
    )


def pick_victim(candidates: Mapping[str, PoolFeatures], w: Weights = Weights()) -> str | None:
    """The candidate with the lowest keep score (ties: name order, for determinism)."""
    if not candidates:
        return None
    return min(sorted(candidates), key=lambda p: keep_score(candidates[p], w))


def lru_victim(last_used: Mapping[str, float]) -> str | None:
    """The baseline: evict whatever was used least recently."""
    if not last_used:
        return None
    return min(sorted(last_used), key=lambda p: last_used[p])
