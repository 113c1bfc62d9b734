"""The counters Prometheus reads, written into Redis where each fact happens.

Every worker process, the provisioner and a gateway write the same Redis hashes
(``keys.counter``), so one exporter reading Redis reports the whole fleet once: no process
keeps a counter of its own that a scrape would have to add up (or could count twice).

* **Requests and nodes** are counted by the ledger's finish and fail scripts
  (``state.ledger``), in the same atomic call that records the node, after its redelivery
  dedupe and fencing: a node counts once, and a request's outcome once (``keys.outcome``,
  the first of met / missed / failed / cancelled wins).
* **Latency histograms** keep one field per bucket, counting the observations that fall in
  it and not below (``bucket``); the exporter sums them into Prometheus' cumulative
  ``le`` buckets. One more field per series keeps the sum.
* **Cancelled** requests are counted by the ledger's cancelled script (``Ledger.cancelled``),
  run by the first worker that stops a node of the request.
* **Admission** and **provisioner** decisions are one ``HINCRBY`` each (``count_admission``,
  ``count_orders``).

Field names join labels with ``SEP``; pool names, kinds, steps and tiers never contain it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TypeAlias

from cato_mq.state import keys

if TYPE_CHECKING:  # types-redis makes clients generic in their reply type
    import redis

    Redis: TypeAlias = redis.Redis[str]
    Pipeline: TypeAlias = redis.client.Pipeline[str]

SEP = "|"
#: A histogram series' field that holds the sum of its observations.
SUM = "sum"
INF = "+Inf"
#: vLLM's bucket bounds (``vllm.v1.metrics.buckets``), so its dashboards' habits carry over.
TTFT_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)
E2E_BUCKETS: tuple[float, ...] = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
    240.0, 480.0, 960.0, 1920.0, 7680.0,
)
OUTCOMES = ("met", "missed", "failed", "cancelled")
#: ``workers.gate.Verdict`` -> the decision counted: a ``requeue`` is a node the gate held
#: for its longest wait and then gave back to its queue.
DECISIONS = {"admitted": "admitted", "requeue": "held", "demote": "demoted"}
#: Provisioner order -> direction counted.
DIRECTIONS = {"spawn": "up", "retire": "down"}

def field(*labels: str) -> str:
    return SEP.join(labels)


def labels(name: str) -> list[str]:
    return name.split(SEP)


def le(bound: float) -> str:
    """A bucket bound as the ``le`` label shows it (Prometheus' float text: ``1.0``, ``+Inf``)."""
    return INF if bound == float("inf") else repr(float(bound))


def bucket(value: float, bounds: Sequence[float]) -> str:
    """The one bucket ``value`` is counted in: the smallest bound at or above it (a value on a
    bound belongs to that bound, as ``le`` says), or ``+Inf`` above them all."""
    i = bisect_left(bounds, value)
    return le(bounds[i]) if i < len(bounds) else INF


def cumulative(counts: dict[str, int], bounds: Sequence[float]) -> list[tuple[str, int]]:
    """Per-bucket counts (``bucket``'s fields) as Prometheus' cumulative ``le`` buckets."""
    out, total = [], 0
    for name in [*(le(b) for b in bounds), INF]:
        total += counts.get(name, 0)
        out.append((name, total))
    return out


def count_admission(client: Redis, pool: str, verdict: str) -> None:
    """One admission decision of cato+'s gate (a ``workers.gate.Verdict`` value)."""
    client.hincrby(keys.counter("admission"), field(pool, DECISIONS[verdict]), 1)


def count_orders(pipe: Pipeline, orders: Iterable[tuple[str, str]]) -> None:
    """Queue on ``pipe`` one count per provisioner order sent: ``(pool, "spawn" | "retire")``."""
    for pool, op in orders:
        pipe.hincrby(keys.counter("provisioner"), field(pool, DIRECTIONS[op]), 1)
