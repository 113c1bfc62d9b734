"""From ``CATO_REDIS_URL`` to a connection: plain, TLS (``rediss://``) or Sentinel.

Every process reaches Redis through two clients: kombu's (the broker, through
``state.transport``) and redis-py's (state, streams, the ledger). Both must get the same
TLS options and follow the same Sentinel master, so both are derived here from the one
URL:

* ``redis://[:PASSWORD@]HOST:PORT/DB``: a plain connection, AUTH when a password is given.
* ``rediss://...?ssl_ca_certs=CA.pem[&ssl_certfile=..&ssl_keyfile=..][&ssl_cert_reqs=required]``:
  TLS; the server's certificate is checked against the CA unless ``ssl_cert_reqs=none``,
  which ``settings`` refuses unless ``CATO_REDIS_TLS_INSECURE`` says so.
* ``sentinel://[:PASSWORD@]HOST:PORT[;sentinel://HOST:PORT...][/DB]``: the sentinels to ask
  for the master named ``CATO_REDIS_MASTER``; the password is the master's. kombu's
  ``SentinelChannel`` (under ``sentinel.SentinelTransport``) and redis-py's ``Sentinel``
  follow a failover to the promoted replica.
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.sentinel import Sentinel

#: ``ssl_cert_reqs`` words redis-py and kombu accept, as ``ssl`` modes.
CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED,
             "cert_none": ssl.CERT_NONE, "cert_optional": ssl.CERT_OPTIONAL, "cert_required": ssl.CERT_REQUIRED}
#: Query parameters that carry TLS options.
TLS_PARAMS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
#: How long a client waits for a sentinel's answer before asking the next one.
SENTINEL_TIMEOUT_S = 1.0


def scheme(url: str) -> str:
    return url.partition("://")[0].lower()


def is_sentinel(url: str) -> bool:
    return scheme(url) == "sentinel"


def tls_options(url: str) -> dict[str, Any] | None:
    """kombu's ``ssl`` dict (Celery's ``broker_use_ssl`` and ``redis_backend_use_ssl``) for a
    ``rediss://`` URL; None for a plain one. The check of the server's certificate is on
    unless the URL turns it off."""
    if scheme(url) != "rediss":
        return None
    query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    options: dict[str, Any] = {"ssl_cert_reqs": CERT_REQS.get(query.get("ssl_cert_reqs", "required").lower(),
                                                              ssl.CERT_REQUIRED)}
    options.update({k: query[k] for k in TLS_PARAMS if k in query})
    return options


def sentinel_nodes(url: str) -> tuple[list[tuple[str, int]], str | None, int]:
    """The sentinels' addresses, the master's password and the database of a
    ``sentinel://`` URL (one ``sentinel://`` part per sentinel, ``;`` between them)."""
    nodes: list[tuple[str, int]] = []
    password: str | None = None
    db = 0
    for part in url.split(";"):
        parsed = urlsplit(part.strip())
        if parsed.scheme != "sentinel" or not parsed.hostname:
            raise ValueError(f"CATO_REDIS_URL: {part!r} is not a sentinel://HOST:PORT part")
        nodes.append((parsed.hostname, parsed.port or 26379))
        password = unquote(parsed.password) if parsed.password else password
        if parsed.path.strip("/"):
            db = int(parsed.path.strip("/"))
    return nodes, password, db


def stay_on_sentinels(alternates: list[str]) -> Iterator[str]:
    """kombu's failover strategy for a ``sentinel://`` URL (Celery's
    ``broker_failover_strategy``). kombu takes the ``;``-separated sentinels for failover
    alternates and, on a failed connect, switches to the next one *by its URL*, which
    replaces the transport with the URL's scheme: kombu's own Sentinel transport, without
    cato-mq's pop, fencing and dead letters (found by the failover test). Every connect of
    the Sentinel channel asks all the sentinels anyway, so the "next" host is the same one,
    given without a scheme: kombu then keeps the transport it was given."""
    return itertools.repeat(urlsplit(alternates[0]).hostname or "127.0.0.1")


def connect(url: str, master: str) -> redis.Redis[str]:
    """A redis-py client for ``url`` that decodes replies: for a Sentinel URL, one that
    finds the current master on each (re)connect, so it follows a failover."""
    client: redis.Redis[str] = _client(url, master, True)
    return client


def connect_raw(url: str, master: str) -> redis.Redis[bytes]:
    """As ``connect``, with replies as bytes (raw messages as they were)."""
    client: redis.Redis[bytes] = _client(url, master, False)
    return client


def _client(url: str, master: str, decode: bool) -> Any:
    if not is_sentinel(url):
        return redis.Redis.from_url(url, decode_responses=True) if decode else redis.Redis.from_url(url)
    nodes, password, db = sentinel_nodes(url)
    sentinels = Sentinel(nodes, socket_timeout=SENTINEL_TIMEOUT_S)
    return sentinels.master_for(master, db=db, password=password, decode_responses=decode)
