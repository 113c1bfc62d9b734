"""Worker start-up: one process per device, engine loaded before any message is taken."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from celery.signals import worker_ready, worker_shutdown

from cato_mq.fleet.devices import pin_env, resolve_platform
from cato_mq.fleet.records import worker_name
from cato_mq.router import NODE_TASK
from cato_mq.settings import get_settings
from cato_mq.state import keys
from workers import fatal
from workers.engine import Engine, EngineError
from workers.replica import Replica
from workers.speed import SpeedModel

log = logging.getLogger("cato_mq.worker")


def build_engine(
    kind: str, profile: str | None, time_scale: float, pool: str = "default", platform: str = "cpu"
) -> tuple[Engine, dict[str, float]]:
    if kind == "sim":
        from cato_mq.engine.timing import EngineTiming
        from cato_mq.state.profiles import seed_estimates
        from workers.sim_engine import SimEngine

        prof = EngineTiming.load(profile) if profile else EngineTiming()
        return SimEngine(prof, time_scale), seed_estimates(profile, None, pool) or prof.estimates()
    if kind == "vllm":
        from workers import vllm_worker

        return vllm_worker.build(pool, platform, profile, None)
    raise ValueError(f"unknown engine {kind!r}")


def check_engine(kind: str, pool: str) -> None:
    """Refuse (ValueError) a vLLM pool the pools file does not define or whose model is missing."""
    if kind == "vllm":
        from workers import vllm_worker

        vllm_worker.spec_for(pool, None)


def queues(pool: str) -> list[str]:
    """Tier queues in strict service order (the worker uses the ``priority`` strategy)."""
    return keys.tier_queues(pool)


def run_one(
    pool: str, engine: str, device: str, concurrency: int, platform: str,
    profile: str | None = None, time_scale: float = 1.0, loglevel: str = "INFO", events: bool = False,
) -> int:
    """Run one worker in this process, pinned to ``device``. Returns the exit code."""
    os.environ.update(pin_env(platform, device))
    settings = get_settings()
    name = worker_name(pool, engine, device, settings.host or socket.gethostname())
    eng, seed = build_engine(engine, profile, time_scale, pool, platform)
    speed = SpeedModel.load(profile, time_scale if engine == "sim" else 1.0)
    replica = Replica(settings, pool, name, eng, concurrency, seed, speed)
    try:
        replica.start()  # before Celery consumes anything: a failed engine never takes a task
    except EngineError as exc:
        print(f"cato-mq worker {name}: {exc}", file=sys.stderr)
        replica.close()
        return fatal.EXIT_ENGINE_FAILED
    from workers import drain, tasks

    _install_fault_hooks()
    # the tier queues carry node tasks only: anything else is a dead letter, not Celery's log line
    tasks.app.conf.broker_transport_options["accept_tasks"] = [NODE_TASK]
    tasks.set_replica(replica)
    drain.install(replica, queues(pool))
    worker_ready.connect(lambda **_: replica.join(), weak=False)
    worker_shutdown.connect(lambda **_: replica.close(), weak=False)
    argv = [
        "worker", "-P", "threads", "-c", str(concurrency), "-n", name,
        "-Q", ",".join(queues(pool)), "--prefetch-multiplier", "1",
        "--without-gossip", "--without-mingle", "-l", loglevel,
    ]
    if events:  # otherwise events flow only while a monitor (Flower) has enabled them
        argv.append("-E")
    try:
        tasks.app.worker_main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _install_fault_hooks() -> None:
    """Test hooks, read once at start. ``CATO_FAULT_AFTER_POP=stop``: the worker freezes
    itself (SIGSTOP) right after taking its first message, where kombu's BRPOP left the
    message in no list and no unacked set; a test then kills it there."""
    if os.environ.get("CATO_FAULT_AFTER_POP") != "stop":
        return
    from cato_mq.state import transport

    def freeze() -> None:
        log.warning("CATO_FAULT_AFTER_POP: freezing after a pop")
        os.kill(os.getpid(), signal.SIGSTOP)

    transport.after_pop = freeze


def supervise(devices: Sequence[str], child_args: Sequence[str], platform: str) -> int:
    """Start one worker process per device and wait; a signal to us reaches all of them."""
    procs = []
    for device in devices:
        env = {**os.environ, **pin_env(platform, device)}
        cmd = [sys.executable, "-m", "cato_mq.cli", "worker", *child_args, "--device", device]
        procs.append(subprocess.Popen(cmd, env=env))

    def forward(signum: int, _frame: object) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [p.wait() for p in procs]
    return next((c for c in codes if c), 0)


def check_profile(profile: str | None) -> None:
    if profile and not Path(profile).is_file():
        raise ValueError(f"profile {profile!r} does not exist")


__all__ = ["check_engine", "check_profile", "resolve_platform", "run_one", "supervise"]
