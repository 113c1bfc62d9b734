"""Real Ray Serve serves the sim engine per task graph (only where the `ray` extra is installed)."""

from __future__ import annotations

import pytest

from cato_mq.bench.workload import Request
from cato_mq.schemas import Kind

pytest.importorskip("ray.serve")


def test_ray_serve_runs_every_kind_and_times_it() -> None:
    from cato_mq.bench import ray_serve

    reqs = [Request(0.1 * i, k, "ttft" if k in (Kind.completion, Kind.generation) else "e2e", 30.0,
                    "def f(x):\n    return x\n", 8, 8, "python", "java" if k is Kind.translation else None)
            for i, k in enumerate(Kind)]
    run = ray_serve.run(reqs, replicas=1, slots=4, time_scale=1.0, tail_s=10.0)
    assert [o.kind for o in run.outcomes] == [k.value for k in Kind]
    assert all(o.met and o.e2e_s is not None and o.ttft_s is not None for o in run.outcomes)
    assert len(run.busy) == 4  # one engine call per graph
