"""``cato-mq worker``: one replica process per device (``workers.main``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _run(args: argparse.Namespace) -> int:
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



def register(sub: Any) -> None:
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
    w.set_defaults(func=_run)

