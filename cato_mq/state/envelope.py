"""What a message on a cato queue must look like before Celery sees it (pure).

kombu's Redis transport and Celery's consumer trust the bytes they pop: a broken
envelope raised inside their event loop and ended the worker (issue 13). ``screen``
checks everything they would trip on, in the order they would trip: the JSON envelope,
its ``properties`` and ``headers``, the content type (only JSON: a pickle is refused,
never loaded), the body's encoding, the task name, and the body's shape, Celery's
protocol 2 ``[args, kwargs, embed]``. It raises ``Poison`` with a kind and a one-line
reason; the transport buries such a message instead of delivering it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from typing import Any

from cato_mq.state.dead import Poison

#: The only content type a cato worker decodes.
ACCEPT = ("application/json",)


def _decode_body(payload: dict[str, Any], properties: dict[str, Any]) -> bytes:
    body = payload.get("body")
    if not isinstance(body, str):
        raise Poison("envelope", "the message body is not a string")
    encoding = properties.get("body_encoding")
    if encoding == "base64":
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Poison("envelope", f"the body is not base64: {exc}") from None
    if encoding in (None, "utf-8"):
        return body.encode()
    raise Poison("envelope", f"unknown body encoding {encoding!r}")


def screen(raw: bytes | str, accept_tasks: Collection[str] | None = None) -> dict[str, Any]:
    """The message as kombu's envelope dict, or ``Poison`` saying what is wrong with it."""
    return screened(raw, accept_tasks)[0]


def screened(raw: bytes | str, accept_tasks: Collection[str] | None = None) -> tuple[dict[str, Any], Any]:
    """``screen``, and the body as kombu would decode it, or None where kombu's decoder
    could read it otherwise (its ``__type__`` markers: datetimes, UUIDs, ...). Handing it
    to kombu's message spares decoding every body twice."""
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Poison("undecodable", f"not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise Poison("envelope", f"the message is a JSON {type(payload).__name__}, not an object")
    properties, headers = payload.get("properties"), payload.get("headers")
    if not isinstance(properties, dict) or not isinstance(properties.get("delivery_info", {}), dict):
        raise Poison("envelope", "the message has no 'properties' object")
    if not isinstance(headers, dict):
        raise Poison("envelope", "the message has no 'headers' object")
    content_type = payload.get("content-type")
    if content_type not in ACCEPT:
        raise Poison("content_type", f"content type {content_type!r} refused: only {', '.join(ACCEPT)} is accepted")
    body = _decode_body(payload, properties)
    task, task_id = headers.get("task"), headers.get("id")
    if not isinstance(task, str) or not isinstance(task_id, str):
        raise Poison("envelope", "headers 'task' and 'id' must be strings (Celery task protocol 2)")
    if accept_tasks is not None and task not in accept_tasks:
        raise Poison("unknown_task", f"unknown task {task!r}")
    try:
        args = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Poison("shape", f"the body is not JSON: {exc}") from None
    ok = (isinstance(args, list) and len(args) == 3 and isinstance(args[0], list)
          and isinstance(args[1], dict) and isinstance(args[2], dict))
    if not ok:
        raise Poison("shape", "the body must be a JSON list [args, kwargs, embed] (Celery task protocol 2)")
    return payload, (None if b'"__type__"' in body else args)
