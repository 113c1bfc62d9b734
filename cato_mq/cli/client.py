"""``cato-mq submit`` and ``cato-mq result``: one request from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cato_mq.schemas import CodingTask


def _task_from_args(args: argparse.Namespace) -> CodingTask:
    from cato_mq.schemas import CodingTask, ContextFile

    prompt = Path(args.prompt_file).read_text() if args.prompt_file else args.prompt
    fields: dict[str, object] = {
        "kind": args.kind, "prompt": prompt, "language": args.language, "pool": args.pool,
        "context": [ContextFile(path=p, text=Path(p).read_text()) for p in args.context],
    }
    if args.target_language:
        fields["target_language"] = args.target_language
    if args.max_tokens is not None:
        fields["max_tokens"] = args.max_tokens
    if args.sla is not None:
        metric, _, seconds = args.sla.partition(":")
        fields["sla"] = {"metric": metric, "seconds": seconds}
    return CodingTask.model_validate(fields)


def _check_replicas(pool: str, required: bool) -> None:
    """Say at once that nobody serves the pool, instead of waiting the whole timeout."""
    import time

    from cato_mq.app import redis_client
    from cato_mq.settings import get_settings
    from cato_mq.state import registry

    if registry.serving(redis_client(), pool, registry.stale_after(get_settings().heartbeat_s), time.time()):
        return
    message = f"no live replica of pool {pool!r}: start one (`cato-mq worker --pool {pool}` or `cato-mq up`)"
    if required:
        raise NoReplica(message)
    print(f"cato-mq submit: warning: {message}; the request waits in its queue", file=sys.stderr)


class NoReplica(RuntimeError):
    """``--require-replica`` and the pool has no live replica: nothing was submitted."""


def _submit(args: argparse.Namespace) -> int:
    from cato_mq.client import submit

    task = _task_from_args(args)
    _check_replicas(task.pool, args.require_replica)
    handle = submit(task)
    print(f"request {handle.request_id}", file=sys.stderr)
    if not args.no_stream and not args.json:  # --json: stdout carries the JSON alone
        for piece in handle.stream(timeout=args.timeout):
            print(piece, end="", flush=True)
        print()
    result = handle.result(timeout=args.timeout)
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        ttft = "-" if result.ttft_s is None else f"{result.ttft_s * 1000:.1f} ms"
        print(f"ttft {ttft}  e2e {result.e2e_s * 1000:.1f} ms  sla {result.sla.metric}<={result.sla.seconds}s "
              f"met={result.met_sla}  tiers {[n.tier for n in result.nodes]}", file=sys.stderr)
    return 0


def _result(args: argparse.Namespace) -> int:
    from cato_mq.client import handle, known

    if not known(args.request_id):  # at once, rather than after --timeout of silence
        raise ValueError(f"unknown request {args.request_id!r}: never submitted to this Redis, or expired")
    print(handle(args.request_id).result(timeout=args.timeout).model_dump_json(indent=2))
    return 0



def register(sub: Any) -> None:
    s = sub.add_parser("submit", help="submit one task, stream its answer, print its timings")
    s.add_argument("--kind", required=True, help="completion, generation, summarization or translation")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="the code or instruction")
    src.add_argument("--prompt-file", help="read the prompt from this file")
    s.add_argument("--language", default="python")
    s.add_argument("--target-language", help="translation only")
    s.add_argument("--pool", default="default")
    s.add_argument("--sla", help="METRIC:SECONDS, e.g. ttft:0.5 or e2e:10 (default: per kind)")
    s.add_argument("--max-tokens", type=int)
    s.add_argument("--context", nargs="*", default=[], help="files the retrieval step searches")
    s.add_argument("--no-stream", action="store_true", help="print only the final result")
    s.add_argument("--json", action="store_true", help="print only the full result, as JSON (no streamed text)")
    s.add_argument("--require-replica", action="store_true",
                   help="refuse (exit 1, nothing submitted) when no replica of the pool is live")
    s.add_argument("--timeout", type=float, default=60.0)
    s.set_defaults(func=_submit)

    r = sub.add_parser("result", help="wait for a request's result (from any process)")
    r.add_argument("request_id")
    r.add_argument("--timeout", type=float, default=60.0)
    r.set_defaults(func=_result)
