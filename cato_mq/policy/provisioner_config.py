"""Provisioner settings: one typed object read from ``CATO_SCALE_*`` environment variables.

Per-pool values are written ``pool=value,pool=value``; pools not named get the default.
Every process of the fleet (beat, provisioner, agents) reads the same variables.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from cato_mq import errors

Policy = Literal["cato", "queue_length"]


def _per_pool(v: object) -> object:
    if isinstance(v, str):
        out: dict[str, str] = {}
        for item in filter(None, (p.strip() for p in v.split(","))):
            pool, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"{item!r} is not pool=value")
            out[pool.strip()] = value.strip()
        return out
    return v


class ProvisionerConfig(BaseModel):
    #: ``cato`` (Algorithm 2 on SLA violations) or ``queue_length`` (Ray Serve-style baseline).
    policy: Policy = "cato"
    #: A tick every 2 s sees a burst within a fifth of the default 10 s violation window,
    #: while one tick costs a handful of pipelined Redis reads per pool.
    tick_s: float = Field(2.0, gt=0)
    #: A crashed beat is replaced after this long; three ticks tolerate one slow renewal.
    leader_ttl_s: float = Field(6.0, gt=0)
    #: Device leases (and agent records) expire this long after the agent's last renewal;
    #: the agent renews three times per lease, so one missed beat never frees a device.
    lease_s: float = Field(10.0, gt=0)
    #: An order not picked up by its agent within this is stale (the agent was down).
    order_ttl_s: float = Field(10.0, gt=0)
    #: A pool with no replica cannot serve its first request without a cold start.
    default_min: int = Field(1, ge=0)
    #: Enough for a small host; set per pool for bigger fleets.
    default_max: int = Field(8, ge=0)
    min_replicas: dict[str, int] = {}
    max_replicas: dict[str, int] = {}
    #: Algorithm 2's threshold: fewer violations than this in a window are noise (one
    #: slow prompt), not missing capacity.
    up_violations: int = Field(3, ge=1)
    #: ... and they must be at least this share of the window's nodes (the paper's
    #: max_exceeded_proportion); 5 % keeps goodput near 95 % before capacity is added.
    up_ratio: float = Field(0.05, ge=0, le=1)
    #: Stand-in for a replica's capacity (nodes per window) until it is measured (no ready
    #: replica has reported its slots yet, or no service-time estimate): low on purpose,
    #: an unmeasured pool errs towards more replicas. Measured, 4 slots x 10 s window /
    #: ~2 s nodes is about 20.
    violations_per_replica: float = Field(5.0, gt=0)
    #: At most this many replicas per pool per tick: bounds the order a wrong service-time
    #: estimate (a few very slow nodes) can cause. A burst that needs more gets the rest at
    #: the next tick, once these count as capacity on the way; half the default maximum.
    max_step: int = Field(4, ge=1)
    #: A retire needs this long of calm (no violations, nothing queued, low utilization):
    #: three windows, so a pause between bursts does not cost a cold start.
    calm_s: float = Field(30.0, ge=0)
    #: Calm means in-flight below this share of batch slots (RemainingSlack's 0.3).
    down_utilization: float = Field(0.3, ge=0, le=1)
    #: No retire within this long of any change of the pool: against flapping.
    down_cooldown_s: float = Field(30.0, ge=0)
    #: Latency sensitivity per pool in [0, 1] for the eviction score (1 = interactive).
    sensitivity: dict[str, float] = {}
    default_sensitivity: float = Field(0.5, ge=0, le=1)
    #: Queue-length baseline (Ray Serve defaults): ongoing requests per replica ...
    target_ongoing: float = Field(2.0, gt=0)
    #: ... and how long a higher (lower) desired count must persist before acting.
    upscale_delay_s: float = Field(30.0, ge=0)
    downscale_delay_s: float = Field(600.0, ge=0)

    @field_validator("min_replicas", "max_replicas", "sensitivity", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        return _per_pool(v)

    def min_for(self, pool: str) -> int:
        return self.min_replicas.get(pool, self.default_min)

    def max_for(self, pool: str) -> int:
        return self.max_replicas.get(pool, self.default_max)

    def sensitivity_for(self, pool: str) -> float:
        return self.sensitivity.get(pool, self.default_sensitivity)

    def check(self, pools: tuple[str, ...]) -> ProvisionerConfig:
        """Refuse per-pool values for unknown pools and minimums above maximums."""
        for name in ("min_replicas", "max_replicas", "sensitivity"):
            unknown = sorted(set(getattr(self, name)) - set(pools))
            if unknown:
                raise ValueError(
                    f"CATO_SCALE_{name.upper()} names unknown pool(s) {', '.join(unknown)}; "
                    f"configured pools: {', '.join(pools)} (CATO_POOLS)"
                )
        for pool in pools:
            if self.min_for(pool) > self.max_for(pool):
                raise ValueError(
                    f"pool {pool!r}: minimum {self.min_for(pool)} replicas is above maximum "
                    f"{self.max_for(pool)} (CATO_SCALE_MIN_REPLICAS / CATO_SCALE_MAX_REPLICAS)"
                )
        return self

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ProvisionerConfig:
        env = dict(os.environ if env is None else env)
        names = {f"CATO_SCALE_{n.upper()}": n for n in cls.model_fields}
        values = {n: env[var] for var, n in names.items() if var in env}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = errors.one_line(exc, errors.env_name("CATO_SCALE_"))
            raise ValueError(f"bad CATO_SCALE_* environment: {problems}") from exc


def load(pools: tuple[str, ...]) -> ProvisionerConfig:
    return ProvisionerConfig.from_env().check(pools)
