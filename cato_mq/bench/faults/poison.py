"""Messages no worker can run, one of each kind a tier queue may receive from anyone who can
reach Redis: what ``cato-mq bench faults`` and the tests push onto a queue."""

from __future__ import annotations

import base64
import json
import pickle
import time
import uuid
from pathlib import Path
from typing import Any

from cato_mq.router import NODE_TASK
from cato_mq.state import keys


class Trap:
    """Loading this pickle creates ``path``: proof that nobody unpickled it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def envelope(
    body: bytes, *, task: str = NODE_TASK, task_id: str | None = None, content_type: str = "application/json",
    encode: bool = True, queue: str = "default.safe",
) -> bytes:
    """A kombu envelope around ``body``, as Celery publishes a task."""
    return json.dumps({
        "body": base64.b64encode(body).decode() if encode else body.decode(), "content-encoding": "utf-8",
        "content-type": content_type,
        "headers": {"lang": "py", "task": task, "id": task_id or uuid.uuid4().hex, "argsrepr": "", "kwargsrepr": ""},
        "properties": {"delivery_tag": str(uuid.uuid4()), "delivery_info": {"exchange": "", "routing_key": queue},
                       "priority": 6, "body_encoding": "base64"},
    }).encode()


def node_body(state: dict[str, Any], index: int = 0, pool: str = "default") -> bytes:
    """Celery protocol 2's ``[args, kwargs, embed]`` for one node of a request."""
    kwargs = {"pool": pool, "index": index, "deadline": time.time() + 60, "expect": 0.1}
    return json.dumps([[state], kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]).encode()


def invalid_state(request_id: str) -> dict[str, Any]:
    """A node's state whose request fails validation (no such kind)."""
    now = time.time()
    return {"rid": request_id, "task": {"kind": "bogus", "prompt": "x"}, "submitted_at": now, "published_at": now,
            "outputs": {}, "nodes": []}


def items(trap: Path, request_id: str | None = None, max_bytes: int = 8 << 20) -> dict[str, bytes]:
    """One poison message of each kind, by name; the invalid state one names ``request_id``
    (a node of that request then fails with the reason)."""
    rid = request_id or uuid.uuid4().hex
    return {
        "bytes": b"\xff\xfe\x00 not json at all",
        "number": b"42",
        "list": b"[1, 2, 3]",
        "not base64": envelope(b"%%% not base64 %%%", encode=False),
        "body not a list": envelope(b'{"args": 1}'),
        "pickle": envelope(pickle.dumps(Trap(trap)), content_type="application/x-python-serialize"),
        "unknown task": envelope(node_body(invalid_state(rid)), task="os.system"),
        "invalid state": envelope(node_body(invalid_state(rid)), task_id=keys.node_task_id(rid, 0, "llm")),
        "oversize": envelope(b"[" + b" " * max_bytes + b"[], {}, {}]"),
    }
