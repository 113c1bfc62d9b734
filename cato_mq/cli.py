"""The ``cato-mq`` command line. Bad arguments or input exit with code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kombu.exceptions import OperationalError
from pydantic import ValidationError
from redis import RedisError

if TYPE_CHECKING:
    from cato_mq.models import CodingTask

EXIT_USAGE = 2


def _worker(args: argparse.Namespace) -> int:
    import os

    from cato_mq.settings import get_settings
    from workers import main

    if args.pools_file:  # through the environment: per-device children inherit it
        os.environ["CATO_POOLS_FILE"] = str(Path(args.pools_file).resolve())
    settings = get_settings()
    if args.pool not in settings.pools:
        raise ValueError(f"unknown pool {args.pool!r}; configured pools: {', '.join(settings.pools)} (CATO_POOLS)")
    if args.concurrency < 1:
        raise ValueError("--concurrency must be at least 1")
    main.check_profile(args.profile)
    main.check_engine(args.engine, args.pool)
    platform = main.resolve_platform(args.platform)
    devices = [d.strip() for d in args.device.split(",") if d.strip()]
    if not devices:
        raise ValueError("--device needs at least one device id")
    if len(devices) > 1:
        child = ["--pool", args.pool, "--engine", args.engine, "--concurrency", str(args.concurrency),
                 "--platform", platform, "--time-scale", str(args.time_scale), "-l", args.loglevel]
        if args.events:
            child.append("--events")
        if args.profile:
            child += ["--profile", args.profile]
        return main.supervise(devices, child, platform)
    return main.run_one(args.pool, args.engine, devices[0], args.concurrency, platform,
                        args.profile, args.time_scale, args.loglevel, args.events)


def _task_from_args(args: argparse.Namespace) -> CodingTask:
    from cato_mq.models import CodingTask, ContextFile

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


def _submit(args: argparse.Namespace) -> int:
    from cato_mq.client import submit

    handle = submit(_task_from_args(args))
    print(f"request {handle.request_id}", file=sys.stderr)
    if not args.no_stream:
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
    from cato_mq.client import handle

    print(handle(args.request_id).result(timeout=args.timeout).model_dump_json(indent=2))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from cato_mq import bench

    return bench.main(args)


def _demo(args: argparse.Namespace) -> int:
    from cato_mq import demo

    return demo.main(args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cato-mq", description="SLA-aware serving of coding tasks over Celery + Redis.")
    sub = p.add_subparsers(dest="command", required=True)

    w = sub.add_parser("worker", help="run a replica: one worker process per device")
    w.add_argument("--pool", required=True, help="model pool whose tier queues to consume")
    w.add_argument("--engine", choices=["sim", "vllm"], default="sim", help="LLM engine (default: sim)")
    w.add_argument("--pools-file", help="vllm: model pools file (default: CATO_POOLS_FILE)")
    w.add_argument("--device", "--devices", default="0", help="device id(s), comma-separated; one process each")
    w.add_argument("--concurrency", "-c", type=int, default=16, help="requests in flight per replica (batch)")
    w.add_argument("--platform", default="auto", help="auto, npu, gpu or cpu: which variable pins the device")
    w.add_argument("--profile", help="engine profile JSON (sim timing parameters)")
    w.add_argument("--time-scale", type=float, default=1.0, help="sim engine: multiply every step's time")
    w.add_argument("-l", "--loglevel", default="INFO")
    w.add_argument("--events", action="store_true",
                   help="always send task events (default: only while Flower or another monitor asks)")
    w.set_defaults(func=_worker)

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
    s.add_argument("--json", action="store_true", help="print the full result as JSON")
    s.add_argument("--timeout", type=float, default=60.0)
    s.set_defaults(func=_submit)

    r = sub.add_parser("result", help="wait for a request's result (from any process)")
    r.add_argument("request_id")
    r.add_argument("--timeout", type=float, default=60.0)
    r.set_defaults(func=_result)

    b = sub.add_parser("bench", help="benchmarks: overhead, vllm, scaling, goodput (see README)",
                       description="`bench overhead` is below; `bench vllm|scaling|goodput ARGS` run "
                                   "bench-vllm, bench-scaling and bench-goodput with ARGS.")
    b.add_argument("which", choices=["overhead"])
    b.add_argument("--hops", type=int, default=1800, help="chain hops measured per system")
    b.add_argument("--redis-url", help="use this Redis instead of a throwaway local one")
    b.add_argument("--json", help="also write the figures to this file")
    b.set_defaults(func=_bench)

    d = sub.add_parser("demo", help="run everything locally on embedded defaults and submit one task per kind")
    d.add_argument("--workers", type=int, default=1)
    d.set_defaults(func=_demo)
    __import__("cato_mq.fleet_cli", fromlist=["register"]).register(sub)  # agent, beat, provisioner, fleet
    __import__("cato_mq.vllm_cli", fromlist=["register"]).register(sub)  # make-tiny-model, profile, bench-vllm
    __import__("cato_mq.sim_cli", fromlist=["register"]).register(sub)  # simulate, bench-goodput
    return p


#: `cato-mq bench NAME ...` is the same as `cato-mq bench-NAME ...` for these benchmarks,
#: which live in their own modules and register their own subcommands
BENCH_ALIASES = ("vllm", "scaling", "goodput")


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if len(words) >= 2 and words[0] == "bench" and words[1] in BENCH_ALIASES:
        words = [f"bench-{words[1]}", *words[2:]]
    args = parser().parse_args(words)
    try:
        return int(args.func(args))
    except (ValidationError, ValueError, FileNotFoundError) as exc:
        print(f"cato-mq {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (RuntimeError, TimeoutError, OSError, RedisError, OperationalError) as exc:
        # a failed request (RequestFailed), a wait that ran out, Redis out of reach
        print(f"cato-mq {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
