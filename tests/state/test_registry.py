"""The replica registry: one format, written by workers, read by the router, the
provisioner, the agents and ``cato-mq fleet``."""

from __future__ import annotations

import redis

from cato_mq.state import keys, registry
from cato_mq.state.registry import Entry, format_entry, parse_entry


def test_entries_with_and_without_state() -> None:
    assert parse_entry("2 16 100.5") == Entry(2, 16, 100.5, "ready")
    assert parse_entry("0 4 7.0 draining") == Entry(0, 4, 7.0, "draining")
    assert parse_entry(format_entry(Entry(3, 8, 12.25, "draining"))) == Entry(3, 8, 12.25, "draining")


def test_stale_and_draining_rules() -> None:
    stale = registry.stale_after(0.5)
    assert stale == 1.5
    fresh, old, leaving = Entry(0, 4, 99.0), Entry(0, 4, 98.0), Entry(0, 4, 99.9, "draining")
    assert fresh.live(100.0, stale) and fresh.serving(100.0, stale)
    assert not old.live(100.0, stale) and not old.serving(100.0, stale)
    assert leaving.live(100.0, stale) and not leaving.serving(100.0, stale)


def test_write_then_read_every_pool_in_one_round_trip(rds: redis.Redis) -> None:
    pipe = rds.pipeline(transaction=False)
    registry.write(pipe, "default", "w1", Entry(1, 4, 10.0), heartbeat_s=0.5)
    registry.write(pipe, "other", "w2", Entry(0, 8, 11.0, "draining"), heartbeat_s=0.5)
    pipe.execute()
    assert registry.read(rds, ["default", "other"]) == {"w1": Entry(1, 4, 10.0), "w2": Entry(0, 8, 11.0, "draining")}
    # the hash expires if every worker falls silent: 30 heartbeats
    assert 0 < rds.ttl(keys.replicas("default")) <= 15
