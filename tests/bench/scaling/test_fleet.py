"""bench-scaling's fleet settings per policy (the runs themselves are benchmarks)."""

from __future__ import annotations

from cato_mq.bench.scaling import fleet


def test_cato_plus_is_cato_scaling_with_cato_plus_routing() -> None:
    env = fleet.policy_env("cato+", 30.0)
    assert env["CATO_SCALE_POLICY"] == "cato" and env["CATO_ROUTING"] == "cato+"
    assert env["CATO_SCALE_UPSCALE_DELAY_S"] == "1.0" and env["CATO_SCALE_DOWNSCALE_DELAY_S"] == "20.0"
    assert fleet.policy_env("queue_length", 30.0)["CATO_SCALE_POLICY"] == "queue_length"


def test_fifo_at_n_pins_the_fleet_to_n_replicas_behind_one_queue() -> None:
    env = fleet.policy_env("fifo@2", 30.0)
    assert env["CATO_ROUTING"] == "fifo"
    assert env["CATO_SCALE_DEFAULT_MIN"] == env["CATO_SCALE_DEFAULT_MAX"] == "2"
