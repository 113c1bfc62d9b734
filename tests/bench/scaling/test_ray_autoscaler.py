"""bench-scaling's real Ray Serve peer: its own autoscaler, scored per request's SLA (only
where the `ray` extra is installed)."""

from __future__ import annotations

import pytest

from cato_mq.bench.scaling.load import Load
from cato_mq.bench.workload import Request
from cato_mq.schemas import Kind

pytest.importorskip("ray.serve")


def test_ray_serve_scores_ttft_and_e2e_requests_and_counts_its_replicas() -> None:
    from cato_mq.bench.scaling import ray_autoscaler

    prompt = "def f(x):\n    return x\n"
    # three completions meet a loose TTFT SLA; a summarization cannot end within 1 ms
    reqs = [Request(0.2 * i, Kind.completion, "ttft", 30.0, prompt, 8, 4) for i in range(3)]
    reqs.append(Request(0.6, Kind.summarization, "e2e", 0.001, prompt, 8, 16))
    out = ray_autoscaler.run(30.0, "t", Load("tiny", reqs, 1.0, "tiny"))
    assert out.policy == "ray-serve" and out.requests == 4
    assert out.goodput == pytest.approx(0.75)
    assert out.peak >= 1 and out.replica_s > 0
