"""The fault suite's short form (``cato-mq bench faults --short``), as CI runs it: every row
on a Redis of its own with two real workers. Goal: nothing lost, no worker exit."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from cato_mq.bench.faults import main
from cato_mq.bench.faults.rows import FAULTS, SHORT


@pytest.mark.timeout(900)
def test_short_fault_suite_loses_nothing(tmp_path: Path) -> None:
    rows = {r.fault: r for r in main.run(None, SHORT, tmp_path, progress=False)}
    assert list(rows) == [f.name for f in FAULTS]
    for r in rows.values():
        assert (r.lost, r.worker_exits, r.notes) == (0, 0, []), r
        assert r.completed + r.failed == r.submitted, r
        assert sum(r.reasons.values()) == r.failed, r  # every failure carries its reason
    for name in ("none", "sigstop", "burst", "sigkill", "restart-aof", "poison", "pop-window"):
        assert rows[name].failed == 0, rows[name]
    assert rows["poison"].dead_letters == 9
    assert rows["pop-window"].redeliveries >= 1  # the frozen worker's message came back
    assert rows["oom"].completed > 0 and rows["oom"].peak_mb < 8  # drained; 4 MB limit plus in-flight outcomes
    assert all("lost: Redis restarted without its data" in k for k in rows["restart-bare"].reasons)
    overload = rows["overload"]  # refused whole at submit, told so; everything admitted completes
    assert overload.failed > 0 and all(k.startswith("submit: Overloaded: pool default") for k in overload.reasons)
    assert overload.completed >= SHORT.backlog
    assert "| SIGKILL inside the pop window | 32 | 32 | 0 | 0 | 0 |" in main.table(list(rows.values()))


def test_unknown_rows_are_refused(tmp_path: Path) -> None:
    args = argparse.Namespace(only=["sigstop", "nope"], short=True, logs=str(tmp_path), json=None, redis_server=None)
    with pytest.raises(ValueError, match=r"unknown fault.*nope"):
        main.main(args)
