"""The pool's service-time estimates in Redis: the workers' seed and the unloaded speed.

The live values are updated by the ledger's end-of-node script with the EWMA rule of
``cato_mq.policy.estimates``; this module seeds them and publishes the LLM step's speed
with the engine to itself beside them (``policy.estimates.ALONE``).
"""

from __future__ import annotations

from collections.abc import Mapping

import redis

from cato_mq.policy.estimates import ALONE
from cato_mq.state import keys

#: Estimates outlive the last update by a day, then a restarted fleet re-seeds them.
ESTIMATE_TTL_S = 86_400


class EstimateStore:
    def __init__(self, client: redis.Redis[str]) -> None:
        self._client = client

    def seed(self, pool: str, values: Mapping[str, float], alone: Mapping[str, float] | None = None) -> None:
        """Seed the live estimates (never overwriting one) and publish the unloaded speed."""
        pipe = self._client.pipeline(transaction=False)
        for name, value in values.items():
            pipe.hsetnx(keys.estimates(pool), name, repr(float(value)))
        for name, value in (alone or {}).items():
            pipe.hset(keys.estimates(pool), ALONE + name, repr(float(value)))
        pipe.expire(keys.estimates(pool), ESTIMATE_TTL_S)
        pipe.execute()
