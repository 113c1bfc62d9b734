"""bench-scaling's policy settings and argument checks (the runs themselves are benchmarks)."""

from __future__ import annotations

import argparse

import pytest

from cato_mq import scaling_bench


def test_cato_plus_is_cato_scaling_with_cato_plus_routing() -> None:
    env = scaling_bench.policy_env("cato+", 30.0)
    assert env["CATO_SCALE_POLICY"] == "cato" and env["CATO_ROUTING"] == "cato+"
    assert env["CATO_SCALE_UPSCALE_DELAY_S"] == "1.0" and env["CATO_SCALE_DOWNSCALE_DELAY_S"] == "20.0"
    assert scaling_bench.policy_env("queue_length", 30.0)["CATO_SCALE_POLICY"] == "queue_length"


def test_fifo_at_n_pins_the_fleet_to_n_replicas_behind_one_queue() -> None:
    env = scaling_bench.policy_env("fifo@2", 30.0)
    assert env["CATO_ROUTING"] == "fifo"
    assert env["CATO_SCALE_DEFAULT_MIN"] == env["CATO_SCALE_DEFAULT_MAX"] == "2"


@pytest.mark.parametrize("policies", ["fifo@7", "fifo@0", "fifo@x", "round-robin", ""])
def test_unknown_policies_are_refused_before_any_fleet_starts(policies: str) -> None:
    args = argparse.Namespace(policies=policies, workload="bursty", data=None, keep_logs=None, repeat=1,
                              time_factor=30.0, json=None)
    with pytest.raises(ValueError, match="--policies"):
        scaling_bench.main(args)
