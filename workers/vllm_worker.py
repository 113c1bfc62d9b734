"""A vLLM replica's engine, built from its pool's entry in the pools file.

Everything that could make the worker unable to serve is checked here, before Celery
consumes anything: the pool must be in the file and its model a local directory
(``ValueError``: the CLI exits 2); the engine itself then starts in ``Replica.start``
(``EngineError``: exit 3).
"""

from __future__ import annotations

import os

from cato_mq.fleet.pools import PoolSpec, pool_spec
from workers.engine import Engine


def spec_for(pool: str, pools_file: str | None) -> PoolSpec:
    from cato_mq.settings import get_settings

    return pool_spec(pools_file or get_settings().pools_file, pool)


def build(pool: str, platform: str, profile: str | None, pools_file: str | None) -> tuple[Engine, dict[str, float]]:
    """The pool's engine (not started yet) and the estimates to seed the pool with."""
    from cato_mq.app import redis_client
    from cato_mq.state.profiles import seed_estimates
    from workers.vllm_engine import VllmEngine

    spec = spec_for(pool, pools_file)
    # the engine core is a spawned child: it reads these from the environment it inherits
    os.environ.update(spec.engine_env(platform))
    engine = VllmEngine(
        spec.model,
        max_model_len=spec.max_model_len,
        max_num_seqs=spec.max_num_seqs,
        dtype=spec.dtype,
        enforce_eager=spec.enforce_eager,
        engine_kwargs=spec.engine_kwargs(platform),
        sampling_kwargs=spec.sampling,
    )
    chosen = profile or (str(spec.profile) if spec.profile else None)
    return engine, seed_estimates(chosen, redis_client(), pool)
