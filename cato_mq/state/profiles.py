"""The fleet's copy of each pool's engine profile in Redis, and the estimates a worker seeds
its pool with. The file format is ``cato_mq.engine.profile``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis

from cato_mq.engine.profile import Profile
from cato_mq.engine.timing import EngineTiming
from cato_mq.state import keys
from cato_mq.state.estimates import ESTIMATE_TTL_S

#: A profile describes hardware and a model, which change rarely; a month keeps it across
#: restarts of the fleet, while an abandoned pool's profile still goes away eventually.
PROFILE_TTL_S = 30 * 86_400


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
    profile in Redis, else none (the defaults apply). A file with only timing parameters
    (the older format) gives the timing model's estimates."""
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
    return EngineTiming.from_profile_data(data).estimates()
