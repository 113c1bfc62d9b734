"""Provisioner settings from CATO_SCALE_*: parsing, and refusal of bad configuration."""

from __future__ import annotations

import pytest

from cato_mq.policy.provisioner_config import ProvisionerConfig

POOLS = ("default", "other")


def test_per_pool_values_and_defaults() -> None:
    c = ProvisionerConfig.from_env({"CATO_SCALE_MIN_REPLICAS": "other=0", "CATO_SCALE_MAX_REPLICAS": "default=3",
                                    "CATO_SCALE_TICK_S": "0.5"}).check(POOLS)
    assert (c.min_for("default"), c.min_for("other"), c.max_for("default"), c.max_for("other")) == (1, 0, 3, 8)
    assert c.tick_s == 0.5 and c.policy == "cato"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CATO_SCALE_MIN_REPLICAS": "default=4", "CATO_SCALE_MAX_REPLICAS": "default=2"}, "above maximum"),
        ({"CATO_SCALE_DEFAULT_MIN": "9"}, "above maximum"),
        ({"CATO_SCALE_MIN_REPLICAS": "nope=1"}, "unknown pool"),
        ({"CATO_SCALE_MIN_REPLICAS": "default"}, "not pool=value"),
        ({"CATO_SCALE_POLICY": "random"}, "CATO_SCALE_"),
        ({"CATO_SCALE_TICK_S": "0"}, "greater than 0"),
    ],
)
def test_bad_configuration_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProvisionerConfig.from_env(env).check(POOLS)
