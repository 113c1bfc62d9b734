"""Open-loop workloads: every arrival time is fixed before the run, so overload shows as
queueing, never as a client that slows down. Deterministic for a seed.

* ``paper_mix``: CATO's evaluation shape, the four kinds mixed in equal shares with
  Poisson arrivals at one rate; prompts and output lengths from real code (``corpus``).
* ``azure_replay``: the Azure LLM inference trace of a code service (Patel et al.,
  Splitwise, ISCA 2024; CC-BY 4.0): arrival times and token counts as recorded, every
  request a completion (long context, short output), optionally time-compressed by a
  stated factor.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from cato_mq.bench.corpus import CHARS_PER_TOKEN, Corpus, Sample, tokens
from cato_mq.schemas import DEFAULT_MAX_TOKENS, DEFAULT_SLA, Kind, Metric

#: Kinds in the paper mix, equal shares (CATO serves the four together).
KINDS = (Kind.completion, Kind.generation, Kind.summarization, Kind.translation)
#: The sim engine's default context window: a request must fit prompt + output in it.
MAX_MODEL_LEN = 4096
#: Below this an output budget is not a coding answer (a trace row of 0 or 1 tokens).
MIN_OUT_TOKENS = 2
#: What the worker's prompt template adds to a prompt, kept free in the context window.
TEMPLATE_TOKENS = 32


@dataclass(frozen=True, slots=True)
class Request:
    at: float  # seconds from the start of the run
    kind: Kind
    metric: Metric
    sla_s: float
    prompt: str
    prompt_tokens: int
    max_tokens: int
    language: str = "python"
    target_language: str | None = None


def _request(at: float, kind: Kind, s: Sample, prompt_tokens: int, max_tokens: int, sla_scale: float) -> Request:
    metric, seconds = DEFAULT_SLA[kind]
    max_tokens = max(MIN_OUT_TOKENS, min(max_tokens, MAX_MODEL_LEN // 2))
    prompt_tokens = max(1, min(prompt_tokens, MAX_MODEL_LEN - TEMPLATE_TOKENS - max_tokens))
    return Request(at, kind, metric, seconds * sla_scale, s.prompt, prompt_tokens, max_tokens,
                   s.language, s.target_language)


def paper_mix(corpus: Corpus, rate: float, duration_s: float, seed: int = 0, sla_scale: float = 1.0) -> list[Request]:
    """Poisson arrivals at ``rate`` per second for ``duration_s``; kinds drawn uniformly;
    output budgets from the data, capped at the kind's default budget."""
    if rate <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    rng = random.Random(seed)
    out: list[Request] = []
    t = rng.expovariate(rate)
    while t < duration_s:
        kind = rng.choice(KINDS)
        s = rng.choice(getattr(corpus, kind.value))
        out.append(_request(t, kind, s, tokens(s.prompt), min(s.out_tokens, DEFAULT_MAX_TOKENS[kind]), sla_scale))
        t += rng.expovariate(rate)
    return out


def _stamp(text: str) -> datetime:
    # the trace has 7 fractional digits; fromisoformat takes at most 6
    head, dot, frac = text.strip().partition(".")
    return datetime.fromisoformat(f"{head}.{frac[:6]}" if dot else head)


def read_trace(path: Path) -> list[tuple[float, int, int]]:
    """``(seconds since the first row, context tokens, generated tokens)`` in time order."""
    with open(path, newline="") as f:
        rows = [(_stamp(r["TIMESTAMP"]), int(r["ContextTokens"]), int(r["GeneratedTokens"])) for r in csv.DictReader(f)]
    if not rows:
        raise ValueError(f"{path} has no rows")
    rows.sort(key=lambda r: r[0])
    t0 = rows[0][0]
    return [((t - t0).total_seconds(), ctx, gen) for t, ctx, gen in rows]


def azure_replay(
    corpus: Corpus, path: Path, compress: float = 1.0, seed: int = 0, limit: int | None = None,
    sla_scale: float = 1.0, start_s: float = 0.0,
) -> list[Request]:
    """Replay the trace from ``start_s`` on: arrival ``i`` at ``(t_i - start_s) / compress``;
    context tokens become the prompt length (capped to the context window), generated
    tokens the output budget. The prompt is real code of that length (``context``), so a
    runtime engine prefills as many tokens as the simulator charges."""
    if compress <= 0:
        raise ValueError("compress must be positive")
    rng = random.Random(seed)
    out: list[Request] = []
    for t, ctx, gen in read_trace(path):
        if t < start_s:
            continue
        if limit is not None and len(out) >= limit:
            break
        s = rng.choice(corpus.completion)
        r = _request((t - start_s) / compress, Kind.completion, s, ctx, gen, sla_scale)
        out.append(replace(r, prompt=context(corpus, rng, s.prompt, r.prompt_tokens)))
    return out


def context(corpus: Corpus, rng: random.Random, prompt: str, prompt_tokens: int) -> str:
    """A completion's context as an editor sends it: functions of the same code base before
    the one being completed, ``prompt_tokens`` long by the corpus's token count."""
    size = round(prompt_tokens * CHARS_PER_TOKEN)
    parts, length = [prompt], len(prompt)
    while length < size:
        before = rng.choice(corpus.completion).prompt
        parts.insert(0, before)
        length += len(before) + 2
    return "\n\n".join(parts)[-size:]


def offered_tokens(requests: list[Request]) -> int:
    return sum(r.max_tokens for r in requests)
