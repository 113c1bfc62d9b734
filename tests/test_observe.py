"""Registry parsing shared by the router and the provisioner."""

from __future__ import annotations

from cato_mq.observe import parse_entry, parse_snapshot


def test_entries_with_and_without_state() -> None:
    assert parse_entry("2 16 100.5") == (2, 16, 100.5, "ready")
    assert parse_entry("0 4 7.0 draining") == (0, 4, 7.0, "draining")


def test_snapshot_skips_stale_and_draining_replicas() -> None:
    registry = {"a": "1 4 100.0 ready", "b": "2 4 100.0 draining", "c": "3 4 50.0", "d": "0 4 99.5"}
    snap = parse_snapshot([0] * 12, registry, {}, now=100.0, stale_s=1.0)
    assert (snap.replicas, snap.slots, snap.inflight) == (2, 8, 1)
