"""Pools file, platform pinning, profile seeding and the vLLM worker's refusals (no vLLM needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from cato_mq.engine.timing import EngineTiming
from cato_mq.fleet import devices
from cato_mq.fleet.pools import load_pools, pool_spec, write_pools
from cato_mq.state import keys
from cato_mq.state.profiles import seed_estimates


def _model(tmp_path: Path, name: str = "m") -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text("{}")
    return d


def test_toml_pools_resolve_relative_paths_and_platform_knobs(tmp_path: Path) -> None:
    _model(tmp_path, "tiny")
    (tmp_path / "p.json").write_text("{}")
    f = tmp_path / "pools.toml"
    f.write_text(
        '[pools.default]\nmodel = "tiny"\nmax_model_len = 512\ndtype = "float32"\nprofile = "p.json"\n'
        'cpu_kvcache_gib = 2\ngpu_memory_utilization = 0.5\nsampling = { ignore_eos = true }\n'
        '[pools.default.env]\nVLLM_CPU_OMP_THREADS_BIND = "0-1"\n'
    )
    spec = pool_spec(f, "default")
    assert spec.model == tmp_path / "tiny" and spec.profile == tmp_path / "p.json"
    assert (spec.max_model_len, spec.max_num_seqs, spec.sampling) == (512, 16, {"ignore_eos": True})
    assert spec.engine_env("cpu") == {"VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_CPU_OMP_THREADS_BIND": "0-1"}
    assert spec.engine_env("gpu") == {"VLLM_CPU_OMP_THREADS_BIND": "0-1"}
    assert spec.engine_kwargs("gpu") == {"gpu_memory_utilization": 0.5}
    assert spec.engine_kwargs("cpu") == {}


@pytest.mark.parametrize(
    ("pools", "pool", "message"),
    [
        ({"a": {"model": "m"}}, "b", "unknown pool 'b'"),
        ({"a": {"model": "nowhere"}}, "a", "does not exist"),
        ({"a": {"model": "m", "max_modle_len": 5}}, "a", "max_modle_len"),
        ({"a": {"model": "m", "max_num_seqs": 0}}, "a", "greater than 0"),
        ({"a": {"model": "m", "profile": "none.json"}}, "a", "profile"),
    ],
)
def test_bad_pools_are_refused(tmp_path: Path, pools: dict[str, dict[str, object]], pool: str, message: str) -> None:
    _model(tmp_path)
    with pytest.raises(ValueError, match=message):
        pool_spec(write_pools(tmp_path / "pools.json", pools), pool)


def test_missing_or_empty_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CATO_POOLS_FILE"):
        pool_spec(None, "a")
    with pytest.raises(ValueError, match="does not exist"):
        load_pools(tmp_path / "none.toml")
    (tmp_path / "empty.toml").write_text("")
    with pytest.raises(ValueError, match="no \\[pools"):
        load_pools(tmp_path / "empty.toml")
    no_config = tmp_path / "dir"
    no_config.mkdir()
    with pytest.raises(ValueError, match=r"config\.json"):
        pool_spec(write_pools(tmp_path / "p.json", {"a": {"model": str(no_config)}}), "a")


def test_platform_pinning() -> None:
    assert devices.pin_env("npu", "3") == {"ASCEND_RT_VISIBLE_DEVICES": "3"}
    assert devices.pin_env("gpu", "1") == {"CUDA_VISIBLE_DEVICES": "1"}
    assert devices.pin_env("cpu", "0") == {"CATO_CPU_DEVICE": "0"}
    assert devices.resolve_platform("gpu") == "gpu"
    assert devices.resolve_platform("auto") == devices.detect_platform() in {"npu", "gpu", "cpu"}
    with pytest.raises(ValueError):
        devices.resolve_platform("tpu")
    with pytest.raises(ValueError):
        devices.pin_env("tpu", "0")


def test_seed_estimates_from_file_redis_or_sim_parameters(tmp_path: Path, rds: redis.Redis) -> None:
    assert seed_estimates(None, rds, "default") == {}
    full = tmp_path / "full.json"
    full.write_text(json.dumps({"estimates": {"llm:fixed": 0.02}, "sim": {}}))
    assert seed_estimates(full, rds, "default") == {"llm:fixed": 0.02}
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"decode_base_s": 0.01}))  # the sim-only format stays readable
    assert seed_estimates(old, None, "default") == EngineTiming(decode_base_s=0.01).estimates()
    rds.set(keys.profile("default"), full.read_text())
    assert seed_estimates(None, rds, "default") == {"llm:fixed": 0.02}


def test_sim_profile_usl_decode_replaces_the_linear_one() -> None:
    linear = EngineTiming()
    assert linear.step_s(4, 0) == pytest.approx(linear.decode_base_s + 4 * linear.decode_per_seq_s)
    usl = EngineTiming(usl_lambda=500.0, usl_sigma=0.1, usl_kappa=0.001)
    assert usl.step_s(0, 0) == 0.0
    assert usl.step_s(1, 0) == pytest.approx(1 / 500)
    prefill = usl.prefill_base_s + 100 * usl.prefill_per_token_s
    assert usl.step_s(8, 100) == pytest.approx((1 + 0.1 * 7 + 0.001 * 56) / 500 + prefill)


def _worker(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "cato_mq.cli", "worker", "--engine", "vllm", *args],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def test_vllm_worker_refuses_pools_it_cannot_serve(tmp_path: Path, redis_url: str) -> None:
    _model(tmp_path)
    f = write_pools(tmp_path / "pools.json", {"default": {"model": "m"}, "other": {"model": "gone"}})
    for args, message in [
        (["--pool", "default"], "CATO_POOLS_FILE"),
        (["--pool", "default", "--pools-file", str(tmp_path / "none.toml")], "does not exist"),
        (["--pool", "nope", "--pools-file", str(f)], "unknown pool 'nope'"),
        (["--pool", "other", "--pools-file", str(f)], "model directory"),
    ]:
        out = _worker(*args, env={"CATO_POOLS_FILE": ""})
        assert out.returncode == 2, out.stderr
        assert message in out.stderr
    # the pool is known to the pools file but not to the fleet (CATO_POOLS)
    out = _worker("--pool", "default", env={"CATO_POOLS_FILE": str(f), "CATO_POOLS": "x"})
    assert out.returncode == 2 and "unknown pool 'default'" in out.stderr
