"""The provisioner side: ``agent``, ``beat``, ``provisioner``, ``fleet``, ``bench-scaling``.

``cato_mq.cli.parser()`` calls ``register``. Bad configuration raises ``ValueError``,
which the CLI turns into exit code 2 with the message.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
from dataclasses import asdict
from pathlib import Path
from typing import Any


def _config() -> Any:
    from cato_mq.policy.provisioner_config import load
    from cato_mq.settings import get_settings

    return load(get_settings().pools)


def parse_profiles(items: list[str], pools: tuple[str, ...]) -> dict[str, str]:
    """``FILE`` (every pool) or ``POOL=FILE``; refuses unknown pools and missing files."""
    out: dict[str, str] = {}
    for item in items:
        pool, sep, path = item.rpartition("=") if "=" in item else ("*", "", item)
        if sep and pool not in pools:
            raise ValueError(f"--profile names unknown pool {pool!r}; configured pools: {', '.join(pools)}")
        if not Path(path).is_file():
            raise ValueError(f"profile {path!r} does not exist")
        out[pool] = path
    return out


def _agent(args: argparse.Namespace) -> int:
    from cato_mq.app import get_app, redis_client
    from cato_mq.fleet.agent import Agent, worker_command
    from cato_mq.fleet.devices import resolve_platform
    from cato_mq.settings import get_settings

    settings = get_settings()
    config = _config()
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    if not devices:
        raise ValueError("--devices needs at least one device id (e.g. --devices 0,1)")
    if len(set(devices)) != len(devices):
        raise ValueError(f"--devices lists a device twice: {args.devices}")
    if args.concurrency < 1:
        raise ValueError("--concurrency must be at least 1")
    profiles = parse_profiles(args.profile, settings.pools)
    host = args.host or settings.host or socket.gethostname()
    platform = resolve_platform(args.platform)
    cmd = worker_command(args.engine, platform, args.concurrency, args.time_scale, profiles)
    log_dir = Path(args.log_dir) if args.log_dir else None
    if log_dir:
        log_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=args.loglevel, format="%(asctime)s agent %(levelname)s %(message)s")
    # every order waits at most one node timeout plus a margin to drain
    agent = Agent(redis_client(), get_app(), host, devices, args.engine, cmd, config.lease_s,
                  config.order_ttl_s, settings.node_timeout_s + 5.0, log_dir)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop.set())
    signal.signal(signal.SIGINT, lambda *_: agent.stop.set())
    agent.run()
    return 0


def _beat(args: argparse.Namespace) -> int:
    from beat.schedule import run_beat
    from cato_mq.app import get_app

    return run_beat(get_app(), _config(), args.loglevel)


def _provisioner(args: argparse.Namespace) -> int:
    _config()  # refuse bad configuration before consuming anything
    from beat.tick import run_provisioner

    return run_provisioner(args.loglevel)


def _fleet(args: argparse.Namespace) -> int:
    from cato_mq.app import redis_client
    from cato_mq.fleet import records
    from cato_mq.settings import get_settings
    from cato_mq.state import keys, registry

    client = redis_client()
    view = records.read(client)
    entries = registry.read(client, get_settings().pools)
    last = client.get(keys.prov_last())
    if args.json:
        print(json.dumps({"replicas": [asdict(r) for r in view.replicas()], "free_devices": view.free_devices,
                          "last_tick": json.loads(last) if last else None}))
        return 0
    print(records.table(view, entries))
    if last:
        tick = json.loads(last)
        print(f"\nlast tick ({tick['policy']}): desired {tick['desired']}, free devices {tick['free_devices']}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from cato_mq.bench.scaling import main as scaling_bench

    return scaling_bench.main(args)


def register(sub: Any) -> None:
    a = sub.add_parser("agent", help="own this host's devices; spawn and retire workers on orders")
    a.add_argument("--devices", required=True, help="device ids this agent owns, comma-separated")
    a.add_argument("--host", help="host name in leases and worker names (default: CATO_HOST or hostname)")
    a.add_argument("--engine", choices=["sim", "vllm"], default="sim",
                   help="engine of the workers it spawns; vllm reads its pools file from CATO_POOLS_FILE")
    a.add_argument("--platform", default="auto", help="auto, npu, gpu or cpu (see `worker`)")
    a.add_argument("--concurrency", "-c", type=int, default=16, help="requests in flight per replica")
    a.add_argument("--time-scale", type=float, default=1.0, help="sim engine: multiply every step's time")
    a.add_argument("--profile", action="append", default=[], help="FILE or POOL=FILE (repeatable)")
    a.add_argument("--log-dir", help="write each worker's output to DIR/<name>.log")
    a.add_argument("-l", "--loglevel", default="INFO")
    a.set_defaults(func=_agent)

    b = sub.add_parser("beat", help="celery beat sending provisioner ticks (leader-locked)")
    b.add_argument("-l", "--loglevel", default="INFO")
    b.set_defaults(func=_beat)

    p = sub.add_parser("provisioner", help="control worker: runs the provisioner ticks")
    p.add_argument("-l", "--loglevel", default="INFO")
    p.set_defaults(func=_provisioner)

    f = sub.add_parser("fleet", help="print agents, devices and replicas as a table")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=_fleet)

    s = sub.add_parser("bench-scaling", help="provisioner vs queue-length autoscaler on real fleets, one bursty load")
    s.add_argument("--workload", choices=["bursty", "azure"], default="bursty",
                   help="bursty: synthetic Poisson phases; azure: a burst of the Azure code trace (../shared/data)")
    s.add_argument("--data", help="the shared data folder (default ../shared/data)")
    s.add_argument("--policies", default="cato,cato+,queue_length",
                   help="comma-separated, run in this order: cato, cato+ (cato scaling, cato+ routing), "
                        "queue_length, ray-serve (real Ray Serve autoscaling; the ray extra)")
    s.add_argument("--time-factor", type=float, default=30.0, help="Ray Serve delays divided by this")
    s.add_argument("--repeat", type=int, default=2, help="runs per policy, interleaved; the table adds medians")
    s.add_argument("--json", help="also write the figures to this file")
    s.add_argument("--keep-logs", help="write process logs to this directory")
    s.set_defaults(func=_bench)
