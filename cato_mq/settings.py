"""One typed settings object, read from ``CATO_*`` environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from cato_mq import errors

#: Redis on the default local port; tests and the demo override it with a throwaway server.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: Must exceed the longest node a worker may run (nodes are cut at NODE_TIMEOUT_SHARE of it),
#: yet stay short because it is also how long a crashed worker's request waits to be redelivered.
DEFAULT_VISIBILITY_TIMEOUT_S = 60.0
#: A node may use at most this share of the visibility timeout, so a healthy node is never
#: redelivered while it still runs (which would execute it twice).
NODE_TIMEOUT_SHARE = 0.8
#: ~16k tokens of code: far above any real completion context, far below what would hurt Redis.
DEFAULT_MAX_PROMPT_CHARS = 65_536
#: Short enough to track load, long enough that one Redis read serves a burst of publishes.
DEFAULT_ROUTER_CACHE_S = 0.05
#: Heartbeat period; a replica silent for three periods is no longer counted.
DEFAULT_HEARTBEAT_S = 1.0
#: Violation counters are kept per window of this length (the provisioner reads them).
DEFAULT_WINDOW_S = 10.0
#: Nodes that may wait on one pool's tier queues before ``submit`` refuses new requests
#: (``Overloaded``): far beyond any backlog a pool drains within its SLAs, low enough that
#: a runaway client fills no Redis (10,000 messages of ~12 KB: ~120 MB).
DEFAULT_MAX_BACKLOG = 10_000
#: Streams and results outlive the request by this much, then expire.
DEFAULT_RESULT_TTL_S = 3600
#: The port OpenTelemetry's Prometheus exporter also defaults to; free of cato-mq's others.
DEFAULT_METRICS_PORT = 9464


#: ``ssl_cert_reqs`` values that skip the check of Redis's certificate.
UNCHECKED_TLS = ("none", "cert_none", "optional", "cert_optional")


class Settings(BaseModel):
    #: ``redis://``, ``rediss://`` (TLS) or ``sentinel://`` (``cato_mq.state.connect``).
    redis_url: str = DEFAULT_REDIS_URL
    #: The master's name the sentinels of a ``sentinel://`` URL know.
    redis_master: str = "mymaster"
    #: Allow ``ssl_cert_reqs=none`` (or ``optional``) in a ``rediss://`` URL: TLS without a
    #: check of the server's certificate, which anyone on the path can impersonate.
    redis_tls_insecure: bool = False
    pools: tuple[str, ...] = ("default",)
    visibility_timeout_s: float = Field(DEFAULT_VISIBILITY_TIMEOUT_S, gt=0)
    max_prompt_chars: int = Field(DEFAULT_MAX_PROMPT_CHARS, gt=0)
    router_cache_s: float = Field(DEFAULT_ROUTER_CACHE_S, ge=0)
    heartbeat_s: float = Field(DEFAULT_HEARTBEAT_S, gt=0)
    window_s: float = Field(DEFAULT_WINDOW_S, gt=0)
    result_ttl_s: int = Field(DEFAULT_RESULT_TTL_S, gt=0)
    #: Backlog bound per pool (nodes queued); 0 turns it off.
    max_backlog: int = Field(DEFAULT_MAX_BACKLOG, ge=0)
    #: Stream flush period for tokens after the first (the first is always sent at once).
    flush_s: float = Field(0.01, ge=0)
    #: Flush period while the outbox holds only intermediate node records (no tokens or
    #: errors waiting): they batch for longer, and fewer flushes land on the chain's hops.
    record_flush_s: float = Field(0.1, ge=0)
    profile: str | None = None
    #: Model pools file (``cato_mq.fleet.pools``) that vLLM workers, the profiler and the agent's
    #: spawned workers all read, so one setting configures a host.
    pools_file: str | None = None
    #: Host part of worker names (``<pool>-<engine>-d<device>@<host>``); empty means the
    #: machine's name. An agent sets it for its workers, so agents playing different
    #: hosts on one machine give their workers distinct names.
    host: str = ""
    #: ``cato`` puts each node in its slack tier; ``fifo`` puts every node in the safe tier,
    #: one FIFO queue per pool: the baseline ``cato-mq bench-goodput`` runs on the runtime.
    #: ``cato+`` adds best effort for lost requests and SABER-style admission in workers.
    routing: Literal["cato", "cato+", "fifo"] = "cato"
    #: The gateway's API keys, one a line (``#`` comments); unset: no key is asked for.
    api_keys_file: str | None = None
    #: The gateway ends (and cancels) a request that sent nothing for this long.
    gateway_timeout_s: float = Field(120.0, gt=0)
    #: Under cato+, a TTFT request whose first token cannot come in time even alone: ``shed``
    #: ends it at once with a clear error (the user has given up on it); ``serve`` runs it
    #: best effort, late.
    on_lost: Literal["shed", "serve"] = "shed"
    #: Port of ``cato-mq metrics``, the Prometheus endpoint.
    metrics_port: int = Field(DEFAULT_METRICS_PORT, ge=0, le=65535)

    @field_validator("pools", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        if isinstance(v, str):
            return tuple(p.strip() for p in v.split(",") if p.strip())
        return v

    @field_validator("pools")
    @classmethod
    def _names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            if not p.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"pool name {p!r} must be letters, digits, '-' or '_'")
        if not v:
            raise ValueError("at least one pool is required")
        return v

    @field_validator("redis_url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if v.partition("://")[0].lower() not in ("redis", "rediss", "sentinel", "unix"):
            raise ValueError(f"{v.partition('://')[0]!r} is not a Redis URL scheme (redis, rediss, sentinel, unix)")
        return v

    @model_validator(mode="after")
    def _checked_tls(self) -> Settings:
        reqs = parse_qs(urlsplit(self.redis_url).query).get("ssl_cert_reqs", [""])[-1].lower()
        if reqs in UNCHECKED_TLS and not self.redis_tls_insecure:
            raise ValueError(f"CATO_REDIS_URL: ssl_cert_reqs={reqs} turns off the check of Redis's TLS certificate; "
                             "give ssl_ca_certs instead, or set CATO_REDIS_TLS_INSECURE=1 to allow it")
        return self

    @property
    def node_timeout_s(self) -> float:
        return self.visibility_timeout_s * NODE_TIMEOUT_SHARE

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        values = {
            name: env[f"CATO_{name.upper()}"]
            for name in cls.model_fields
            if f"CATO_{name.upper()}" in env
        }
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ValueError(f"bad CATO_* environment: {errors.one_line(exc, errors.env_name('CATO_'))}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
