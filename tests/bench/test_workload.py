"""Workload generator: determinism, shapes, the Azure trace replay, and fallbacks."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from cato_mq.bench import corpus, workload
from cato_mq.schemas import DEFAULT_MAX_TOKENS, Kind

TRACE = corpus.default_data_root() / "azure-llm-trace-2023" / "code.csv"


@pytest.fixture(scope="module")
def real() -> corpus.Corpus:
    return corpus.load()


def test_paper_mix_is_deterministic_for_a_seed(real: corpus.Corpus) -> None:
    a = workload.paper_mix(real, 5.0, 60.0, seed=3)
    assert a == workload.paper_mix(real, 5.0, 60.0, seed=3)
    assert a != workload.paper_mix(real, 5.0, 60.0, seed=4)


def test_paper_mix_shape(real: corpus.Corpus) -> None:
    reqs = workload.paper_mix(real, 10.0, 200.0, seed=1)
    assert 1800 < len(reqs) < 2200  # Poisson: 2000 expected
    assert all(0 <= a.at < b.at < 200 for a, b in itertools.pairwise(reqs))
    kinds = {k: sum(r.kind is k for r in reqs) for k in Kind}
    assert min(kinds.values()) > 400  # four kinds, equal shares
    assert all(2 <= r.max_tokens <= DEFAULT_MAX_TOKENS[r.kind] for r in reqs)
    assert all(r.target_language for r in reqs if r.kind is Kind.translation)
    assert {r.metric for r in reqs if r.kind is Kind.completion} == {"ttft"}


def test_synthetic_fallback_when_data_is_missing(tmp_path: Path) -> None:
    c = corpus.load(tmp_path / "nowhere")
    assert any("no shared data" in n for n in c.notes)
    assert c.translation and c.generation  # synthetic stand-ins
    assert any("synthetic" in n for n in c.notes)
    assert workload.paper_mix(c, 2.0, 10.0, seed=0)


def test_trace_timestamps_with_seven_fraction_digits(tmp_path: Path) -> None:
    f = tmp_path / "code.csv"
    f.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10\n"
                 "2023-11-16 18:17:05.9799609,100,0\n")
    rows = workload.read_trace(f)
    assert rows == [(0.0, 4808, 10), (pytest.approx(2.0), 100, 0)]
    c = corpus.Corpus()
    corpus.synthetic(c)
    reqs = workload.azure_replay(c, f, compress=4.0)
    assert [r.at for r in reqs] == [0.0, pytest.approx(0.5)]
    assert reqs[0].prompt_tokens + reqs[0].max_tokens <= workload.MAX_MODEL_LEN
    assert reqs[1].max_tokens == workload.MIN_OUT_TOKENS


@pytest.mark.skipif(not TRACE.is_file(), reason="shared Azure trace not present")
def test_azure_replay_of_the_real_trace(real: corpus.Corpus) -> None:
    reqs = workload.azure_replay(real, TRACE, compress=2.0, limit=500)
    assert len(reqs) == 500 and reqs[0].at == 0.0
    assert all(r.kind is Kind.completion for r in reqs)
    assert reqs == workload.azure_replay(real, TRACE, compress=2.0, limit=500)
    # the prompt is real code of the trace's length, so a runtime engine prefills as much
    assert all(corpus.tokens(r.prompt) == r.prompt_tokens for r in reqs)
    assert all(r.prompt_tokens + workload.TEMPLATE_TOKENS + r.max_tokens <= workload.MAX_MODEL_LEN for r in reqs)
