"""The workloads of bench-scaling: seeded, open-loop, and the Azure slice's shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from cato_mq.bench import corpus
from cato_mq.bench.scaling import load
from cato_mq.schemas import Kind

TRACE = corpus.default_data_root() / "azure-llm-trace-2023" / "code.csv"


def test_bursty_is_deterministic_and_bursts_in_its_middle_phase() -> None:
    a, b = load.bursty(), load.bursty()
    assert a.requests == b.requests and a.requests != load.bursty(seed=8).requests
    (calm, _), (burst, _), _ = load.PHASES
    ats = [r.at for r in a.requests]
    assert ats == sorted(ats) and a.span_s == 60.0
    in_burst = sum(calm <= t < calm + burst for t in ats)
    assert in_burst > 3 * sum(t < calm for t in ats)  # 8/s against 1/s
    assert all(r.kind is Kind.summarization and r.metric == "e2e" for r in a.requests)


@pytest.mark.skipif(not TRACE.is_file(), reason="shared Azure trace not present")
def test_the_azure_slice_is_the_traces_burst_slowed_down() -> None:
    w = load.azure()
    assert len(w.requests) == load.AZURE_LIMIT and 0.0 <= w.requests[0].at < 10.0
    assert all(r.kind is Kind.completion and r.metric == "ttft" for r in w.requests)
    # slowed 4x: 30 trace seconds become about two minutes
    assert 100.0 < w.span_s <= 30.0 / load.AZURE_COMPRESS
    assert sum(r.prompt_tokens for r in w.requests) / len(w.requests) > 1000  # long contexts


def test_without_the_trace_azure_falls_back_to_bursty_and_says_so(tmp_path: Path) -> None:
    w, note = load.load("azure", tmp_path)
    assert w.name == "bursty" and note is not None and "no Azure trace" in note
    assert load.load("bursty") == (load.bursty(), None)
    with pytest.raises(ValueError, match="bursty or azure"):
        load.load("poisson")
