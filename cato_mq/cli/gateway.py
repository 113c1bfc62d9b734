"""``cato-mq gateway``: the OpenAI-compatible HTTP gateway (``cato_mq.gateway``)."""

from __future__ import annotations

import argparse
from typing import Any


def _run(args: argparse.Namespace) -> int:
    from cato_mq.gateway.app import serve
    from cato_mq.settings import get_settings

    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be 1 to 65535, not {args.port}")
    return serve(get_settings(), args.host, args.port, args.loglevel)


def register(sub: Any) -> None:
    g = sub.add_parser("gateway", help="serve the OpenAI-compatible HTTP API (editors, the openai client)",
                       description="OpenAI-compatible HTTP gateway: /v1/completions, /v1/chat/completions, "
                                   "/v1/models, /health. API keys from CATO_API_KEYS_FILE.")
    g.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    g.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    g.add_argument("-l", "--loglevel", default="INFO")
    g.set_defaults(func=_run)
