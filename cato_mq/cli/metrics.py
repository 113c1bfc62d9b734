"""``cato-mq metrics``: the fleet's Prometheus endpoint (``cato_mq.metrics``)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from typing import Any

from cato_mq.settings import DEFAULT_METRICS_PORT


def _metrics(args: argparse.Namespace) -> int:
    from cato_mq.metrics import serve
    from cato_mq.settings import get_settings

    settings = get_settings()
    port = settings.metrics_port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise ValueError(f"--port must be 0..65535, not {port}")
    # SIGTERM (compose, an `up` stopping) ends the server as Ctrl-C does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        serve(args.host, port, settings)
    return 0


def register(sub: Any) -> None:
    m = sub.add_parser(
        "metrics", help="serve the fleet's Prometheus metrics (read from Redis) on /metrics",
        description="Serves TTFT and E2E histograms, requests by outcome, nodes per tier, queue depths, "
                    "replicas, admission and provisioner decisions, read from Redis at each scrape: "
                    "every process of the fleet writes its facts there, so one endpoint reports them all "
                    "(docs/metrics.md).",
    )
    m.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    m.add_argument("--port", type=int, default=None,
                   help=f"port (default CATO_METRICS_PORT, {DEFAULT_METRICS_PORT}; 0 picks a free one)")
    m.set_defaults(func=_metrics)
