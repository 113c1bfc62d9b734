"""``cato-mq dead``: list the dead letters (messages no worker could run) and replay one."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

#: Characters of a dead letter's raw message shown in the listing.
PREVIEW_CHARS = 120


def _dead(args: argparse.Namespace) -> int:

    from cato_mq.settings import get_settings
    from cato_mq.state.connect import connect_raw
    from cato_mq.state.dead import DeadLetters

    if args.limit < 1:
        raise ValueError("--limit must be at least 1")
    s = get_settings()
    letters = DeadLetters(connect_raw(s.redis_url, s.redis_master))  # raw messages as they were
    if args.requeue:
        for entry_id in args.requeue:
            letters.requeue(entry_id)
            print(f"requeued {entry_id}")
        return 0
    entries = letters.entries(args.limit)
    if args.json:
        print(json.dumps({"counts": letters.counts(), "letters": [
            {"id": e.id, "kind": e.kind, "reason": e.reason, "queue": e.queue, "list": e.list, "at": e.at,
             "request": e.request or None, "raw": e.raw.decode("utf-8", "replace")} for e in entries
        ]}, indent=2))
        return 0
    counts = letters.counts()
    print("dead letters by kind: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.at))
        request = f" request {e.request}" if e.request else ""
        print(f"{e.id}  {when}  {e.queue or '-'}  {e.kind}{request}: {e.reason}")
        print(f"    {e.raw[:PREVIEW_CHARS]!r}{' ...' if len(e.raw) > PREVIEW_CHARS else ''}")
    return 0


def register(sub: Any) -> None:
    d = sub.add_parser(
        "dead", help="list dead letters (messages no worker could run); --requeue ID replays one",
        description="Messages on a cato queue that are no well-formed node message are buried in the "
                    "dead letters with their kind, reason, queue and time, and counted per kind. "
                    "--requeue puts one back at the head of the list it came from (after a fix, e.g. "
                    "a pool added to CATO_POOLS).",
    )
    d.add_argument("--requeue", nargs="+", metavar="ID", help="replay these dead letters")
    d.add_argument("--limit", type=int, default=20, help="newest entries listed (default 20)")
    d.add_argument("--json", action="store_true", help="print counts and entries as JSON")
    d.set_defaults(func=_dead)
