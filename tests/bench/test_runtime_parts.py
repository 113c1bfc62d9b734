"""Where a real run's TTFT went (``bench.runtime.ttft_parts``), from a request's own record."""

from __future__ import annotations

from typing import Any

import pytest

from cato_mq.bench.runtime import ttft_parts
from cato_mq.schemas import NodeRecord, Result

T0 = 1000.0


def node(step: str, queued: float, started: float, ended: float, **detail: Any) -> NodeRecord:
    return NodeRecord(index=0, step=step, tier="safe", worker="w", redelivered=False, deadline=T0 + 9,
                      queued_at=T0 + queued, started_at=T0 + started, ended_at=T0 + ended, met_deadline=True,
                      detail=detail)


def result(nodes: list[NodeRecord], ttft: float | None) -> Result:
    return Result.model_validate({"request_id": "r", "kind": "completion", "text": "x", "ttft_s": ttft,
                                  "e2e_s": nodes[-1].ended_at - T0, "sla": {"metric": "ttft", "seconds": 1},
                                  "met_sla": True, "nodes": [n.model_dump() for n in nodes]})


def test_the_three_parts_split_the_ttft_at_the_llm_nodes_start_and_the_engines_first_token() -> None:
    res = result([node("retrieve", 0.0, 0.01, 0.02), node("llm", 0.02, 0.05, 0.5, engine_ttft_s=0.03)], ttft=0.1)
    parts = ttft_parts(res)
    assert parts is not None
    assert parts.to_engine == pytest.approx(0.05)  # arrival -> the LLM node starts
    assert parts.engine == pytest.approx(0.03)
    assert parts.delivery == pytest.approx(0.02)  # what is left: hand-off and the stream write


def test_no_parts_without_a_first_token_or_the_engines_timing() -> None:
    assert ttft_parts(result([node("llm", 0, 0.05, 0.5, engine_ttft_s=0.03)], ttft=None)) is None
    assert ttft_parts(result([node("llm", 0, 0.05, 0.5)], ttft=0.1)) is None  # no engine timing
    assert ttft_parts(result([node("noop", 0, 0.05, 0.5)], ttft=0.1)) is None
