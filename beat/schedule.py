"""``cato-mq beat``: a real ``celery beat`` whose scheduler sends ticks only while it holds
the leader lock.

The tick goes to its own ``control`` queue (a busy model worker never delays it) with
``expires`` = one tick period, so ticks that waited longer than a period, e.g. while the
provisioner was down, are dropped instead of acted on in a burst. The scheduler keeps its
schedule in memory (no shelve file): a lost schedule costs at most one period.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import Celery
from celery.beat import ScheduleEntry, Scheduler

from beat.leader import LeaderLock
from cato_mq.policy.provisioner_config import ProvisionerConfig

log = logging.getLogger("cato_mq.beat")
TICK_TASK = "cato.provision_tick"
#: How soon a beat that could not reach Redis tries again.
RECONNECT_S = 1.0
CONTROL_QUEUE = "control"


def beat_schedule(config: ProvisionerConfig) -> dict[str, Any]:
    return {
        "cato-provision": {
            "task": TICK_TASK,
            "schedule": config.tick_s,
            "options": {"queue": CONTROL_QUEUE, "expires": config.tick_s, "priority": 0},
        }
    }


class LeaderScheduler(Scheduler):  # type: ignore[misc]
    """celery beat's in-memory scheduler behind a Redis leader lock."""

    lock: LeaderLock | None = None

    def setup_schedule(self) -> None:
        from cato_mq.app import redis_client
        from cato_mq.policy.provisioner_config import ProvisionerConfig

        config = ProvisionerConfig.from_env()
        self.lock = LeaderLock(redis_client(), config.leader_ttl_s)
        # renew well inside the TTL even when no tick is due
        self.max_interval: float = min(float(self.max_interval), config.leader_ttl_s / 3)
        super().setup_schedule()

    def tick(self, *args: Any, **kwargs: Any) -> float:
        assert self.lock is not None
        try:
            leading = self.lock.hold()
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
            # Redis restarting: beat keeps running and sends no tick until it leads again
            log.warning("Redis out of reach (%s); retrying in %.1f s", exc, RECONNECT_S)
            return RECONNECT_S
        if not leading:
            return float(self.max_interval)  # a standby beat: check again later
        return float(super().tick(*args, **kwargs))

    def apply_async(self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kw: Any) -> Any:
        assert self.lock is not None
        entry.kwargs = {**(entry.kwargs or {}), "leader": self.lock.token}
        return super().apply_async(entry, producer=producer, advance=advance, **kw)

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()
        super().close()


def run_beat(app: Celery, config: ProvisionerConfig, loglevel: str) -> int:
    app.conf.beat_schedule = beat_schedule(config)
    app.start(["beat", "-S", "beat.schedule:LeaderScheduler", "-l", loglevel])
    return 0
