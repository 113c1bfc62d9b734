"""The ``cato_drain`` remote-control command: how an agent retires a replica gracefully.

It does what Celery's ``cancel_consumer`` does, for every tier queue of the pool at once,
and in the same step marks the replica ``draining`` in the registry so the router stops
counting its slots. Tasks already running finish; the agent sends ``shutdown`` once the
registry shows nothing in flight (field notes 1.7).
"""

from __future__ import annotations

from typing import Any

from celery.worker.control import control_command, ok

from workers.replica import Replica

_target: tuple[Replica, list[str]] | None = None


def install(replica: Replica, queues: list[str]) -> None:
    global _target
    _target = (replica, list(queues))


@control_command()  # type: ignore[untyped-decorator,unused-ignore]
def cato_drain(state: Any, **_: Any) -> dict[str, Any]:
    """Stop taking new nodes; reply with the number still in flight."""
    if _target is None:
        return {"error": "no replica in this worker"}
    replica, queues = _target
    for queue in queues:
        state.consumer.call_soon(state.consumer.cancel_task_queue, queue)
    replica.drain()
    return dict(ok(f"draining, {replica.inflight} in flight"))
