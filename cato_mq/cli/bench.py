"""``cato-mq bench overhead`` and ``bench metrics`` (the other benchmarks register ``bench-NAME``
commands of their own)."""

from __future__ import annotations

import argparse
from typing import Any


def _bench(args: argparse.Namespace) -> int:
    if args.which == "metrics":
        from cato_mq.bench import metrics_scrape

        return metrics_scrape.main(args)
    from cato_mq.bench import overhead

    return overhead.main(args)



def _bench_up(args: argparse.Namespace) -> int:
    from cato_mq.bench import up

    return up.main(args)


def _bench_gateway(args: argparse.Namespace) -> int:
    from cato_mq.bench import gateway

    if args.requests < 1 or args.streams < 1 or args.max_tokens < 1:
        raise ValueError("--requests, --streams and --max-tokens must be at least 1")
    return gateway.main(args)


def register(sub: Any) -> None:
    b = sub.add_parser("bench", help="benchmarks: overhead, metrics, vllm, scaling, goodput, gateway (see README)",
                       description="`bench overhead` and `bench metrics` are below; "
                                   "`bench vllm|scaling|goodput|up|gateway ARGS` run bench-NAME with ARGS.")
    b.add_argument("which", choices=["overhead", "metrics"])
    b.add_argument("--hops", type=int, default=1800, help="overhead: chain hops measured per system")
    b.add_argument("--requests", type=int, default=10_000, help="metrics: requests recorded before scraping")
    b.add_argument("--scrapes", type=int, default=20, help="metrics: scrapes timed")
    b.add_argument("--replicas", type=int, default=16, help="metrics: live registry entries")
    b.add_argument("--redis-url", help="use this Redis instead of a throwaway local one")
    b.add_argument("--json", help="also write the figures to this file")
    b.set_defaults(func=_bench)

    u = sub.add_parser("bench-up", help="time and memory from `cato-mq up` to the first answer")
    u.add_argument("--engines", default="sim", help="comma-separated: sim, vllm (the [cpu] extra)")
    u.add_argument("--devices", type=int, default=1, help="devices the agent owns")
    u.add_argument("--json", help="also write the figures to this file")
    u.set_defaults(func=_bench_up)


    g = sub.add_parser("bench-gateway", help="the HTTP gateway against direct submit; open SSE streams held")
    g.add_argument("--requests", type=int, default=200, help="latency samples per path (default 200)")
    g.add_argument("--max-tokens", type=int, default=32, help="tokens per latency request (default 32)")
    g.add_argument("--streams", type=int, default=1000, help="SSE streams opened at once (default 1000)")
    g.add_argument("--redis-url", help="use this Redis instead of a throwaway local one")
    g.add_argument("--json", help="also write the figures to this file")
    g.set_defaults(func=_bench_gateway)
