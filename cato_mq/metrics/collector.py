"""The Prometheus collector: every series, read from Redis in one pipeline per scrape.

Counters come from the hashes the fleet writes as facts happen (``state.outcomes``); gauges
from live state: the tier queues' lengths, the replica registry, the provisioner's last
tick. Every configured pool gets every counter series at zero, so a rate exists from the
first request on and a goodput ratio never divides an absent series.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from cato_mq.graphs import GRAPHS
from cato_mq.schemas import DEFAULT_SLA, Kind
from cato_mq.settings import Settings
from cato_mq.state import dead as dead_letters
from cato_mq.state import keys, outcomes, pool, registry

if TYPE_CHECKING:  # types-redis makes clients generic in their reply type
    import redis

    Redis: TypeAlias = redis.Redis[str]

KINDS = tuple(k.value for k in Kind)
#: The steps of every kind's graph.
STEPS = tuple(sorted({node.step for graph in GRAPHS.values() for node in graph}))
#: Replica states the registry knows, and ``stale`` for an entry whose worker fell silent.
REPLICA_STATES = (*registry.STATES, "stale")
#: name -> (bounds, help) of the two latency histograms (vLLM's names and buckets).
HISTOGRAMS = {
    "ttft": ("cato:time_to_first_token_seconds", outcomes.TTFT_BUCKETS,
             "Time to first token of finished requests, from arrival, in seconds."),
    "e2e": ("cato:e2e_request_latency_seconds", outcomes.E2E_BUCKETS,
            "End-to-end latency of finished requests, from arrival to the last node's end, in seconds."),
}
#: counter hash -> (series, label names after the field's own, the values every pool gets, help)
COUNTERS: dict[str, tuple[str, tuple[str, ...], Sequence[tuple[str, ...]], str]] = {
    "requests": ("cato:requests", ("kind", "outcome"), [(k, o) for k in KINDS for o in outcomes.OUTCOMES],
                 "Requests by outcome: met or missed their SLA, failed, cancelled. Goodput is met over all."),
    "nodes": ("cato:nodes", ("step", "tier"), [(s, t) for s in STEPS for t in keys.TIERS],
              "Nodes finished, by step and by the tier queue each was served from."),
    "admission": ("cato:admission_decisions", ("decision",), [(d,) for d in outcomes.DECISIONS.values()],
                  "cato+ admission decisions at the workers' gates: admitted, held (then requeued), demoted."),
    "provisioner": ("cato:provisioner_decisions", ("direction",), [(d,) for d in outcomes.DIRECTIONS.values()],
                    "Replicas the provisioner ordered up (spawn) or down (retire)."),
}


class FleetCollector(Collector):
    """Reads the whole fleet's series from Redis at each scrape."""

    def __init__(self, client: Redis, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    def collect(self) -> Iterator[Metric]:
        pools = self._settings.pools
        pipe = self._client.pipeline(transaction=False)
        for name in keys.COUNTERS:
            pipe.hgetall(keys.counter(name))
        pipe.hgetall(keys.dead_counts())
        pipe.get(keys.prov_last())
        for p in pools:
            pool.queue_depths(pipe, p, keys.TIERS)
            pipe.hgetall(keys.replicas(p))
        replies: list[Any] = pipe.execute()
        counts = dict(zip(keys.COUNTERS, replies, strict=False))
        dead, last = replies[len(keys.COUNTERS)], replies[len(keys.COUNTERS) + 1]
        rest = replies[len(keys.COUNTERS) + 2 :]
        per_pool = pool.replies_for(keys.TIERS) + 1
        live = {p: rest[i * per_pool : (i + 1) * per_pool] for i, p in enumerate(pools)}

        for name, (series, bounds, doc) in HISTOGRAMS.items():
            yield histogram(series, doc, bounds, counts[name], pools)
        for name, (series, names, zeros, doc) in COUNTERS.items():
            yield counter(series, doc, names, zeros, counts[name], pools)
        d = CounterMetricFamily("cato:dead_letters", "Messages buried as dead letters, by reason.", labels=["reason"])
        for reason, n in sorted({**dict.fromkeys(dead_letters.KINDS, 0), **dead}.items()):
            d.add_metric([reason], float(n))
        yield d
        yield from gauges(live, last, registry.stale_after(self._settings.heartbeat_s))
        sla = GaugeMetricFamily("cato:sla_seconds", "Each kind's default SLA, in seconds.", labels=["kind", "metric"])
        for kind, (metric, seconds) in DEFAULT_SLA.items():
            sla.add_metric([kind.value, metric], seconds)
        yield sla

    def describe(self) -> Iterator[Metric]:
        return iter(())  # nothing to describe before a scrape: no Redis read at registration


def histogram(
    series: str, doc: str, bounds: Sequence[float], raw: dict[str, str], pools: Sequence[str],
) -> HistogramMetricFamily:
    buckets: dict[tuple[str, str], dict[str, int]] = {(p, k): {} for p in pools for k in KINDS}
    sums: dict[tuple[str, str], float] = defaultdict(float)
    for name, value in raw.items():
        parts = outcomes.labels(name)
        if len(parts) != 3:
            continue
        p, kind, bucket = parts
        if bucket == outcomes.SUM:
            sums[(p, kind)] = float(value)
        else:
            buckets.setdefault((p, kind), {})[bucket] = int(value)
    h = HistogramMetricFamily(series, doc, labels=["pool", "kind"])
    for (p, kind), counts in sorted(buckets.items()):
        h.add_metric([p, kind], outcomes.cumulative(counts, bounds), sums[(p, kind)])
    return h


def counter(
    series: str, doc: str, names: tuple[str, ...], zeros: Sequence[tuple[str, ...]], raw: dict[str, str],
    pools: Sequence[str],
) -> CounterMetricFamily:
    values: dict[tuple[str, ...], float] = {(p, *z): 0.0 for p in pools for z in zeros}
    for name, count in raw.items():
        parts = tuple(outcomes.labels(name))
        if len(parts) == len(names) + 1:
            values[parts] = float(count)
    c = CounterMetricFamily(series, doc, labels=["pool", *names])
    for labels, total in sorted(values.items()):
        c.add_metric(list(labels), total)
    return c


def gauges(live: dict[str, list[Any]], last_tick: str | None, stale_s: float) -> Iterator[Metric]:
    """Queue depths and replicas from the pools' live replies; desired replicas from the
    provisioner's last tick."""
    depth = GaugeMetricFamily("cato:queue_depth", "Nodes waiting in each tier queue.", labels=["pool", "tier"])
    states = GaugeMetricFamily("cato:replicas", "Replicas in the registry, by state.", labels=["pool", "state"])
    running = GaugeMetricFamily("cato:num_requests_running", "Nodes in flight on each live replica "
                                "(held at cato+'s gate included).", labels=["pool", "replica"])
    slots = GaugeMetricFamily("cato:batch_slots", "Nodes each live replica runs at once (its concurrency).",
                              labels=["pool", "replica"])
    drift = GaugeMetricFamily("cato:speed_drift", "Each live replica's observed over profiled engine step "
                              "time (online re-profiling).", labels=["pool", "replica"])
    now = time.time()
    for p, replies in live.items():
        *lengths, raw_registry = replies
        for tier, n in pool.depths(lengths, keys.TIERS).items():
            depth.add_metric([p, tier], float(n))
        by_state = dict.fromkeys(REPLICA_STATES, 0)
        for name, entry in sorted(registry.parse_all(raw_registry).items()):
            if not entry.live(now, stale_s):
                by_state["stale"] += 1
                continue
            by_state[entry.state] = by_state.get(entry.state, 0) + 1
            running.add_metric([p, name], float(entry.inflight))
            slots.add_metric([p, name], float(entry.concurrency))
            drift.add_metric([p, name], entry.drift)
        for state, n in by_state.items():
            states.add_metric([p, state], float(n))
    yield from (depth, states, running, slots, drift)
    desired = GaugeMetricFamily("cato:desired_replicas", "Replicas the provisioner's last tick wanted per pool.",
                                labels=["pool"])
    for p, n in sorted((json.loads(last_tick).get("desired", {}) if last_tick else {}).items()):
        desired.add_metric([p], float(n))
    yield desired
