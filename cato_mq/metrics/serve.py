"""The exposition text, and ``cato-mq metrics``'s own small HTTP server for it."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, TypeAlias

import redis as redis_lib
from prometheus_client import CollectorRegistry, generate_latest

from cato_mq.metrics.collector import FleetCollector
from cato_mq.settings import Settings, get_settings

if TYPE_CHECKING:
    Redis: TypeAlias = redis_lib.Redis[str]

#: The classic text format, which every Prometheus 2.x reads (prometheus-client's own
#: latest type names version 1.0.0 since 0.22; ``generate_latest`` writes the same text).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PATH = "/metrics"


def exposition(client: Redis, settings: Settings | None = None) -> tuple[bytes, str]:
    """The fleet's series as Prometheus text, and its content type: what a ``/metrics``
    handler returns. ``client`` must decode responses (``decode_responses=True``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(client, settings or get_settings()))
    return generate_latest(registry), CONTENT_TYPE


def server(client: Redis, host: str, port: int, settings: Settings | None = None) -> ThreadingHTTPServer:
    """A bound (not yet serving) HTTP server answering ``GET /metrics``; port 0 picks one."""
    chosen = settings or get_settings()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != PATH:
                self._reply(404, b"not found: the series are at /metrics\n", "text/plain")
                return
            try:
                body, content_type = exposition(client, chosen)
            except redis_lib.RedisError as exc:  # Prometheus records the scrape as failed
                self._reply(503, f"Redis out of reach: {exc}\n".encode(), "text/plain")
                return
            self._reply(200, body, content_type)

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per scrape every few seconds says nothing

    httpd = ThreadingHTTPServer((host, port), Handler)
    httpd.daemon_threads = True
    return httpd


def serve(host: str, port: int, settings: Settings | None = None, ready: threading.Event | None = None) -> None:
    """Serve until interrupted; prints the URL Prometheus should scrape."""
    chosen = settings or get_settings()
    client = redis_lib.Redis.from_url(chosen.redis_url, decode_responses=True)
    client.ping()  # a wrong CATO_REDIS_URL fails here, at start, not at the first scrape
    httpd = server(client, host, port, chosen)
    bound_host, bound_port = httpd.server_address[:2]
    print(f"serving Prometheus metrics on http://{bound_host!s}:{bound_port}{PATH}", flush=True)
    if ready is not None:
        ready.set()
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
        client.close()
