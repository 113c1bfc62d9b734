"""The goodput harness end to end, seconds long: the simulator sweep, the Azure replay,
the real-runtime check on the test Redis, the report files and the goals table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import redis

from cato_mq.bench.goodput import goals, main


def test_quick_run_writes_table_json_and_plots(rds: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    args = argparse.Namespace(quick=True, no_runtime=False, ray=False, vllm=False, out=str(tmp_path), data=None,
                              redis_url=None)
    assert main.main(args, redis_url=redis_url) == 0
    data = json.loads((tmp_path / "goodput.json").read_text())
    systems = {r["system"] for r in data["rows"] if r["workload"] == "paper"}
    assert systems == {"cato", "cato+", "fifo", "queue-length", "round-robin"}
    runtime = [r for r in data["rows"] if r["where"] == "runtime"]
    assert {r["system"] for r in runtime} == {"cato", "cato+", "fifo"}
    assert all(r["summary"]["requests"] > 0 for r in runtime)
    azure = [r for r in data["rows"] if r["workload"] == "azure"]
    # the paper mix, and the Azure slice where the trace is on this machine
    assert len(data["validation"]) == (6 if azure else 3)
    if azure:
        checked = [r for r in data["rows"] if r["workload"] == "azure-check"]
        assert {(r["system"], r["where"]) for r in checked} == {
            (s, w) for s in ("cato", "cato+", "fifo") for w in ("runtime", "sim")}
    md = (tmp_path / "goodput.md").read_text()
    assert "| paper | 30.0 | cato+ |" in md and "### Goals" in md
    assert (tmp_path / "goodput_vs_load.png").stat().st_size > 0
    if azure:  # the trace is on this machine: static fleets also at cato+'s budget
        names = [r["system"] for r in azure]
        n = main.matched_replicas(
            next(r["summary"]["replica_s"] for r in azure if r["system"] == "cato+"),
            next(r["summary"]["replica_s"] for r in azure if r["system"] == "fifo") / 6)
        assert names == ["cato", "cato+", "fifo", "queue-length", "round-robin", f"fifo@{n}", f"round-robin@{n}"]
        assert f"| azure | 2.0 | fifo@{n} |" in md


def test_matched_replicas_is_the_static_fleet_of_the_same_cost() -> None:
    assert main.matched_replicas(19_536, 1_748) == 11
    assert main.matched_replicas(20_000, 1_748) == 11
    assert main.matched_replicas(20_500, 1_748) == 12
    assert main.matched_replicas(10.0, 1_748) == 1
    assert main.matched_replicas(10.0, 0.0) == 1


def _row(system: str, goodput: float, rs: float = 100.0, util: float = 0.5, workload: str = "paper") -> dict:
    s = {"goodput": goodput, "replica_s": rs, "utilization": util, "kinds": {}}
    return {"workload": workload, "load": 1.0, "system": system, "where": "sim", "summary": s}


def test_goals_compare_against_the_best_baseline() -> None:
    rows = [_row("cato+", 0.9), _row("cato", 0.7), _row("fifo", 0.6), _row("round-robin", 0.7, util=0.6)]
    met = {g["goal"].split(" >=")[0]: g["met"] for g in goals.check(rows)}
    assert met["paper, top load: cato+ goodput"] is True  # 0.9 / 0.7 = 1.29
    assert met["paper, top load: cato goodput"] is False  # 1.0x
    assert met["paper, top load: cato+ utilization"] is False  # 0.5 < 0.6
    azure = [_row("cato+", 0.8, rs=50, workload="azure"), _row("queue-length", 0.7, rs=60, workload="azure")]
    assert goals.check(azure)[0]["met"] is True
