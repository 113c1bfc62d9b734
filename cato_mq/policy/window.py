"""The sliding violation window: how the provisioner counts the last window's nodes and
slack violations from two fixed windows. Pure; the beat's observations (``beat.gather``)
and the simulator's (``cato_mq.sim.scaling``) both count with it.

Workers count finished nodes into fixed windows of ``CATO_WINDOW_S`` (``state.ledger``).
A count "over the last window" is this window so far plus the share of the previous
window it does not cover yet: the usual sliding-window-counter approximation, which
needs two counters instead of a timestamp per node.
"""

from __future__ import annotations


def position(now: float, span: float) -> tuple[int, float]:
    """The fixed window ``now`` falls in (its index: it starts at ``index * span``) and how
    far into it ``now`` is, as a fraction."""
    index = int(now // span)
    return index, now / span - index


def sliding(current: float, previous: float, frac: float) -> float:
    """A count over the last full window, ``frac`` of the way into the current one."""
    return current + previous * (1 - frac)
