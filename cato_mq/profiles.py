"""An engine profile: what ``cato-mq profile`` measured for a pool, as a file and in Redis.

The file is JSON. Its ``sim`` object is a ``workers.sim_engine.SimProfile`` (which loads
the file as it is), its ``estimates`` the service-time estimates the router plans with
(``cato_mq.estimates``); the rest is the evidence: per-step and per-kind baselines, the
prefill line and the USL fit of decode speed against concurrency.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis
from pydantic import BaseModel

from cato_mq import keys
from cato_mq.ledger import ESTIMATE_TTL_S
from workers.sim_engine import SimProfile

#: A profile describes hardware and a model, which change rarely; a month keeps it across
#: restarts of the fleet, while an abandoned pool's profile still goes away eventually.
PROFILE_TTL_S = 30 * 86_400


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
    #: total decode tokens/s against concurrent requests: the USL (``cato_mq.usl``)
    decode: Fit
    estimates: dict[str, float]
    sim: SimProfile


def save(profile: Profile, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(profile.model_dump_json(indent=2))
    return path


def load(path: str | Path) -> Profile:
    return Profile.model_validate_json(Path(path).read_text())


def store(client: redis.Redis[str], profile: Profile) -> None:
    """Publish the profile and make its estimates the pool's current ones at once (the
    router reads them at its next publish; live EWMA updates continue from there)."""
    pipe = client.pipeline(transaction=True)
    pipe.set(keys.profile(profile.pool), profile.model_dump_json(), ex=PROFILE_TTL_S)
    pipe.hset(keys.estimates(profile.pool), mapping={k: repr(v) for k, v in profile.estimates.items()})
    pipe.expire(keys.estimates(profile.pool), ESTIMATE_TTL_S)
    pipe.execute()


def seed_estimates(path: str | Path | None, client: redis.Redis[str] | None, pool: str) -> dict[str, float]:
    """Estimates a worker seeds its pool with: from the profile file, else from the pool's
    profile in Redis, else none (the defaults apply). A file with only sim parameters
    (the older format) gives the sim model's estimates."""
    data: dict[str, Any] | None = None
    if path:
        data = json.loads(Path(path).read_text())
    elif client is not None:
        raw = client.get(keys.profile(pool))
        data = json.loads(raw) if raw else None
    if data is None:
        return {}
    if "estimates" in data:
        return {k: float(v) for k, v in data["estimates"].items()}
    return SimProfile.model_validate(data.get("sim", data)).estimates()
