"""``cato-mq bench-scaling``: the runs of every policy asked for, interleaved, and their table."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from cato_mq.bench.scaling import fleet, load
from cato_mq.bench.scaling.load import Load
from cato_mq.bench.scaling.result import DEVICES, POLICIES, PolicyRun, table


def _ray(factor: float, run: str, work: Load) -> PolicyRun:
    from cato_mq.bench.scaling import ray_autoscaler  # the `ray` extra

    return ray_autoscaler.run(factor, run, work)


def _static(policy: str) -> bool:
    name, _, n = policy.partition("@")
    return name == "fifo" and n.isdigit() and 1 <= int(n) <= DEVICES


def main(args: argparse.Namespace) -> int:
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = {p for p in policies if p not in POLICIES and not _static(p)}
    if unknown or not policies:
        raise ValueError(f"--policies: choose from {', '.join(POLICIES)}, fifo@N (N = 1..{DEVICES}) "
                         f"(got {args.policies!r})")
    work, note = load.load(args.workload, Path(args.data) if args.data else None)
    if note:
        print(note)
    logs = Path(args.keep_logs) if args.keep_logs else Path(tempfile.mkdtemp(prefix="cato-bench-scaling-"))
    logs.mkdir(parents=True, exist_ok=True)
    if args.repeat < 1:
        raise ValueError("--repeat: at least 1")
    outcomes = [
        _ray(args.time_factor, str(i), work) if p == "ray-serve"
        else fleet.run_policy(p, args.time_factor, logs / f"run{i}", work, str(i))
        for i in range(1, args.repeat + 1) for p in policies
    ]
    print(table(outcomes, args.time_factor, work))
    if args.json:
        Path(args.json).write_text(json.dumps([o.__dict__ for o in outcomes], indent=2))
    return 0
