"""An engine profile: what ``cato-mq profile`` measured for a pool, as a JSON file.

Its ``timing`` object is an ``EngineTiming`` (which loads the file as it is), its
``estimates`` the service-time estimates the router plans with
(``cato_mq.policy.estimates``); the rest is the evidence: per-step and per-kind baselines,
the prefill line and the USL fit of decode speed against concurrency. The fleet's copy in
Redis is ``cato_mq.state.profiles``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field

from cato_mq.engine.timing import EngineTiming


class Fit(BaseModel):
    """One fitted curve and the points it was fitted to."""

    params: dict[str, float | None]
    r2: float
    points: list[tuple[float, float]]


class Profile(BaseModel):
    pool: str
    model: str
    engine: str = "vllm"
    platform: str
    measured_at: float
    #: worker process start to its first task accepted (the provisioner's lead time)
    cold_start_s: float
    #: seconds per node at light load (p50), by step: retrieve, llm, validate
    nodes: dict[str, float]
    #: end-to-end seconds at light load (p50), by task kind
    kinds: dict[str, float]
    #: time to first token (s) against prompt tokens: ``base_s + per_token_s * tokens``
    prefill: Fit
    #: total decode tokens/s against concurrent requests: the USL (``engine.usl``)
    decode: Fit
    estimates: dict[str, float]
    #: the step model; profiles written before it had this name called it ``sim``
    timing: EngineTiming = Field(validation_alias=AliasChoices("timing", "sim"))


def save(profile: Profile, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(profile.model_dump_json(indent=2))
    return path


def load(path: str | Path) -> Profile:
    return Profile.model_validate_json(Path(path).read_text())

