"""The ``cato-mq`` command line: one module per command group, each with a ``register``.

Bad arguments or input exit with code 2 and one line saying what is wrong; a failed
request, a wait that ran out or an unreachable Redis exit with code 1. Commands import
what they run lazily, so ``cato-mq --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence

from kombu.exceptions import OperationalError
from pydantic import ValidationError
from redis import RedisError

from cato_mq import errors
from cato_mq.cli import bench, client, dead, demo, engine, faults, fleet, gateway, metrics, sim, up, worker

EXIT_USAGE = 2
#: What a shell reports for a process that SIGPIPE ended: `cato-mq fleet | head` ends so.
EXIT_BROKEN_PIPE = 141
#: What a shell reports for a process that SIGTERM ended.
EXIT_TERMINATED = 143
#: Command groups in the order ``--help`` lists them.
GROUPS = (up, gateway, worker, client, bench, demo, fleet, engine, sim, dead, faults, metrics)
#: `cato-mq bench NAME ...` is the same as `cato-mq bench-NAME ...` for these benchmarks,
#: which live in their own modules and register their own subcommands
BENCH_ALIASES = ("vllm", "scaling", "goodput", "faults", "up", "gateway")


def parser() -> argparse.ArgumentParser:
    from cato_mq import __version__

    p = argparse.ArgumentParser(prog="cato-mq", description="SLA-aware serving of coding tasks over Celery + Redis.")
    p.add_argument("--version", action="version", version=f"cato-mq {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return p


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_TERMINATED)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if len(words) >= 2 and words[0] == "bench" and words[1] in BENCH_ALIASES:
        words = [f"bench-{words[1]}", *words[2:]]
    command = "cato-mq"
    # SIGTERM ends a command as Ctrl-C does, through its `finally`s: a benchmark or a demo
    # stops the workers and servers it started rather than leaving them orphaned. Commands
    # that handle it themselves (up, the worker, the gateway) set their own handler later.
    main_thread = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        args = parser().parse_args(words)
        command = f"cato-mq {args.command}"
        return int(args.func(args))
    except BrokenPipeError:
        # the reader went away (`| head`): say nothing, and keep Python's exit-time flush of
        # stdout from raising again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except ValidationError as exc:
        for line in errors.problems(exc):
            print(f"{command}: {line}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, FileNotFoundError) as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"{command}: {line}", file=sys.stderr)
        return EXIT_USAGE
    except (RuntimeError, TimeoutError, OSError, RedisError, OperationalError) as exc:
        # a failed request (RequestFailed), a wait that ran out, Redis out of reach
        print(f"{command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if main_thread:  # None: the handler before was not set from Python
            signal.signal(signal.SIGTERM, before if before is not None else signal.SIG_DFL)
