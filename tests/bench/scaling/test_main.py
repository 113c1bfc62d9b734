"""bench-scaling's argument checks: refused before any fleet starts."""

from __future__ import annotations

import argparse

import pytest

from cato_mq.bench.scaling import main


@pytest.mark.parametrize("policies", ["fifo@7", "fifo@0", "fifo@x", "round-robin", ""])
def test_unknown_policies_are_refused_before_any_fleet_starts(policies: str) -> None:
    args = argparse.Namespace(policies=policies, workload="bursty", data=None, keep_logs=None, repeat=1,
                              time_factor=30.0, json=None)
    with pytest.raises(ValueError, match="--policies"):
        main.main(args)
