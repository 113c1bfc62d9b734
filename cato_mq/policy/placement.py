"""Which replica goes first when a pool shrinks. Pure; the beat's planner (``beat.plan``)
and the simulator (``cato_mq.sim.scaling``) both rank with it.

A replica still starting goes before any that serves (it has served nobody yet); among
the serving ones, the one with the least in flight (its drain ends soonest), newest
first on ties (it has the least warm state, and the oldest keep the fleet stable).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar


class Replica(Protocol):
    @property
    def state(self) -> str: ...
    @property
    def since(self) -> float: ...


R = TypeVar("R", bound=Replica)


def retire_order(replicas: Iterable[R], inflight: Callable[[R], int]) -> list[R]:
    """``replicas`` (starting or ready) in the order they should be retired."""
    return sorted(replicas, key=lambda r: (r.state == "ready", inflight(r), -r.since))
