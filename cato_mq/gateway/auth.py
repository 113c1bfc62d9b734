"""API keys: ``Authorization: Bearer KEY``, checked against ``CATO_API_KEYS_FILE`` in constant time.

The file holds one key a line; blank lines and ``#`` comments are skipped. Without the
setting no key is asked for (a gateway on a developer's own machine). With it, an empty or
missing file is refused at start-up: a gateway that meant to ask for keys never runs open.
Every configured key is compared, each with ``hmac.compare_digest``, so the time taken says
nothing about which key, or how much of one, matched. ``GET /health`` needs no key (probes).
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from starlette.requests import Request

from cato_mq.gateway.errors import unauthorized


def load_keys(path: str | None) -> tuple[bytes, ...] | None:
    """The keys' SHA-256 digests (equal length: nothing leaks through the comparison's
    length), or None when no keys file is configured."""
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"API keys file {path!r} does not exist (CATO_API_KEYS_FILE)")
    keys = [line.strip() for line in file.read_text().splitlines()]
    keys = [k for k in keys if k and not k.startswith("#")]
    if not keys:
        raise ValueError(f"API keys file {path!r} holds no key (CATO_API_KEYS_FILE)")
    return tuple(_digest(k) for k in keys)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def check(request: Request, keys: tuple[bytes, ...] | None) -> None:
    """Refuse (401) a request without a configured key; a no-op when none is configured."""
    if keys is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise unauthorized("Missing API key: send 'Authorization: Bearer <key>'")
    digest = _digest(given.strip())
    matched = False
    for key in keys:  # no early exit: every key costs the same
        matched |= hmac.compare_digest(digest, key)
    if not matched:
        raise unauthorized("Incorrect API key provided")
