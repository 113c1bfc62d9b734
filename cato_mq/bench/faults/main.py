"""``cato-mq bench faults [--short] [--only NAME ...] [--json FILE]``: run the rows, print
the table."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

from cato_mq.bench.faults.rows import FAULTS, SHORT, Params
from cato_mq.bench.faults.run import Row, run_row


def table(rows: list[Row]) -> str:
    head = ("| fault during the load | submitted | completed | failed with a reason | lost | worker exits "
            "| dead letters | redeliveries | Redis peak MB |\n|---|---|---|---|---|---|---|---|---|")
    lines = [f"| {r.label} | {r.submitted} | {r.completed} | {r.failed} | {r.lost} | {r.worker_exits} "
             f"| {r.dead_letters} | {r.redeliveries} | {r.peak_mb:.1f} |" for r in rows]
    return "\n".join([head, *lines])


def run(names: list[str] | None, params: Params, logs: Path, progress: bool = True) -> list[Row]:
    chosen = [f for f in FAULTS if not names or f.name in names]
    rows = []
    for fault in chosen:
        row = run_row(fault, params, logs)
        rows.append(row)
        if progress:
            print(f"{row.fault}: {row.completed}/{row.submitted} completed, {row.failed} failed, {row.lost} lost, "
                  f"{row.worker_exits} worker exits ({row.seconds:.0f} s)", file=sys.stderr, flush=True)
    return rows


def main(args: argparse.Namespace) -> int:
    names = args.only or None
    unknown = sorted(set(names or ()) - {f.name for f in FAULTS})
    if unknown:
        raise ValueError(f"--only: unknown fault(s) {', '.join(unknown)}; known: {', '.join(f.name for f in FAULTS)}")
    params = replace(SHORT if args.short else Params(), redis_server=args.redis_server)
    logs = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="cato-faults-"))
    rows = run(names, params, logs)
    print(f"Redis {rows[0].redis_version if rows else '?'}; {'short form' if args.short else 'full form'}: "
          f"{params.rate:g} requests/s for {params.duration_s:g} s, lost = no outcome {params.wait_s:g} s after")
    print(table(rows))
    for r in rows:
        for reason, count in r.reasons.items():
            print(f"  {r.fault}: {count} x {reason}")
        for note in r.notes:
            print(f"  {r.fault}: NOTE {note}")
    print(f"worker logs: {logs}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"params": asdict(params), "rows": [asdict(r) for r in rows]}, indent=2))
    bad = [r for r in rows if r.lost or r.worker_exits or r.notes]
    return 1 if bad else 0
