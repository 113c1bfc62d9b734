"""The real-engine side: ``make-tiny-model``, ``profile``, ``bench-vllm``.

``cato_mq.cli.parser()`` calls ``register``. Bad arguments raise ``ValueError``, which
the CLI turns into exit code 2 with the message.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

#: Concurrency levels the profiler measures decode speed at (the USL needs N = 1); the
#: worker's default batch is 16.
DEFAULT_LEVELS = "1,2,4,8,16"


def parse_levels(text: str) -> list[int]:
    try:
        levels = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError as exc:
        raise ValueError(f"--levels must be comma-separated integers, got {text!r}") from exc
    if not levels or levels[0] != 1:
        raise ValueError(f"--levels must include 1 (the single-request speed), got {text!r}")
    return levels


def _make_tiny_model(args: argparse.Namespace) -> int:
    from cato_mq.engine.tiny_model import make_tiny_model

    if args.corpus is not None and not Path(args.corpus).exists():
        raise ValueError(f"corpus {args.corpus} does not exist")
    print(make_tiny_model(Path(args.out_dir), seed=args.seed, corpus=args.corpus))
    return 0


def _profile(args: argparse.Namespace) -> int:
    from cato_mq.engine import measure

    if args.rounds < 1 or args.max_tokens < 2:
        raise ValueError("--rounds must be at least 1 and --max-tokens at least 2")
    prof = measure.run(
        args.pool, pools_file=args.pools_file, out=Path(args.out) if args.out else None,
        platform=args.platform, device=args.device, levels=parse_levels(args.levels),
        rounds=args.rounds, max_tokens=args.max_tokens, store_profile=not args.no_store,
    )
    print(measure.summary(prof))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from cato_mq.bench import vllm_overhead

    return vllm_overhead.main(args)


def register(sub: Any) -> None:
    m = sub.add_parser("make-tiny-model", help="write a tiny random Llama model + tokenizer (no download)")
    m.add_argument("out_dir", help="directory to write (created)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--corpus", type=Path, help="text file or directory of .py files (default: the stdlib)")
    m.set_defaults(func=_make_tiny_model)

    p = sub.add_parser("profile", help="measure a pool's vLLM engine; store the profile in Redis and a file")
    p.add_argument("--pool", required=True)
    p.add_argument("--pools-file", help="model pools file (default: CATO_POOLS_FILE)")
    p.add_argument("--out", help="profile JSON to write (default: profile-<pool>.json)")
    p.add_argument("--platform", default="auto", help="auto, npu, gpu or cpu")
    p.add_argument("--device", default="0", help="device the measuring worker runs on")
    p.add_argument("--levels", default=DEFAULT_LEVELS, help="concurrent requests to measure decode speed at")
    p.add_argument("--rounds", type=int, default=3, help="samples per measurement point")
    p.add_argument("--max-tokens", type=int, default=64, help="output tokens per measuring request")
    p.add_argument("--no-store", action="store_true", help="write the file only, not the fleet's Redis")
    p.set_defaults(func=_profile)

    b = sub.add_parser("bench-vllm", help="cato-mq vs the same vLLM engine in-process: TTFT, E2E, batching")
    b.add_argument("--pool", default="default")
    b.add_argument("--pools-file", help="model pools file (default: a generated tiny model)")
    b.add_argument("--platform", default="auto", help="auto, npu, gpu or cpu")
    b.add_argument("--batch", "-B", type=int, default=16, help="concurrent requests of the batched phase")
    b.add_argument("--requests", type=int, default=24, help="light-load requests per system")
    b.add_argument("--rounds", type=int, default=3, help="batched rounds per system")
    b.add_argument("--max-tokens", type=int, default=64)
    b.add_argument("--json", help="also write the figures to this file")
    b.set_defaults(func=_bench)

