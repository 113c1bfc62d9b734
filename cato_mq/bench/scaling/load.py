"""The workloads of ``cato-mq bench-scaling``, open-loop and seeded, sized for its small
fleet (3 CPU "devices", batch 4, the sim engine 5x slower than the tiny model):

* ``bursty``: summarizations (E2E SLA) in three Poisson phases, calm, a burst about 2.5x
  one replica's capacity, calm: the shape the provisioner's reaction is measured on;
* ``azure``: a slice of the Azure code trace (completions, TTFT SLA, 1,700-token contexts
  on average) around its first large burst, slowed so that the burst needs the whole fleet
  and the calm before and after needs one replica.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from cato_mq.bench import corpus, workload
from cato_mq.bench.workload import Request
from cato_mq.schemas import Kind

#: (seconds, requests per second): calm, a burst about 2.5x one replica's capacity, calm.
PHASES = ((15.0, 1.0), (15.0, 8.0), (30.0, 1.0))
SLA_S = 3.0
MAX_TOKENS = 32
PROMPT = "def f(x):\n    return x + 1\n"
#: The Azure slice: trace seconds 185-215 (206 requests, 112 of them within 5 s) ...
AZURE_START_S = 185.0
AZURE_LIMIT = 206
#: ... slowed 4x: a 20 s burst of 5.6 req/s against ~1.7 req/s per replica, in 2 minutes.
AZURE_COMPRESS = 0.25
#: A node with a 4,000-token context queued behind other prefills takes longer than the
#: bursty load's 8 s node timeout (80 % of a 10 s visibility timeout): give it 24 s.
AZURE_VISIBILITY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Load:
    name: str
    requests: list[Request]
    span_s: float  #: the load's length: replica-seconds are counted to here plus a tail
    about: str  #: one line for the report
    env: dict[str, str] = field(default_factory=dict)  #: settings this load needs in every process


def arrivals(seed: int = 7) -> list[float]:
    rng, out, start = random.Random(seed), [], 0.0
    for length, rate in PHASES:
        t = start
        while True:
            t += rng.expovariate(rate)
            if t >= start + length:
                break
            out.append(t)
        start += length
    return out


def bursty(seed: int = 7) -> Load:
    reqs = [Request(at, Kind.summarization, "e2e", SLA_S, PROMPT, corpus.tokens(PROMPT), MAX_TOKENS)
            for at in arrivals(seed)]
    phases = " -> ".join(f"{r:g}/s for {d:g} s" for d, r in PHASES)
    return Load("bursty", reqs, sum(p[0] for p in PHASES),
                f"{len(reqs)} summarization requests (e2e SLA {SLA_S:g} s, {MAX_TOKENS} tokens), Poisson {phases}")


def azure(data: Path | None = None, seed: int = 0) -> Load:
    """The trace slice; raises FileNotFoundError when the shared data is missing."""
    root = data or corpus.default_data_root()
    trace = root / "azure-llm-trace-2023" / "code.csv"
    if not trace.is_file():
        raise FileNotFoundError(f"no Azure trace at {trace}")
    reqs = workload.azure_replay(corpus.load(root), trace, AZURE_COMPRESS, seed, AZURE_LIMIT, start_s=AZURE_START_S)
    mean = sum(r.prompt_tokens for r in reqs) / len(reqs)
    return Load("azure", reqs, max(r.at for r in reqs),
                f"{len(reqs)} completions of the Azure code trace from second {AZURE_START_S:g} (TTFT SLA "
                f"{reqs[0].sla_s:g} s, {mean:.0f}-token contexts on average), slowed {1 / AZURE_COMPRESS:g}x")


def load(name: str, data: Path | None = None) -> tuple[Load, str | None]:
    """The named workload, and a note when it fell back to ``bursty`` (no trace here)."""
    if name == "azure":
        try:
            return azure(data), None
        except FileNotFoundError as exc:
            return bursty(), f"{exc}: ran the bursty synthetic workload instead"
    if name != "bursty":
        raise ValueError(f"--workload: bursty or azure (got {name!r})")
    return bursty(), None
