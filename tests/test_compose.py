"""compose.yaml cannot be run here (no Docker engine), so check what can be: every service
that runs cato-mq passes a command line the real CLI parser accepts, against a Redis URL
that points at the compose Redis service."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cato_mq.cli import parser

COMPOSE = yaml.safe_load((Path(__file__).parent.parent / "compose.yaml").read_text())


@pytest.mark.parametrize("name", [n for n, s in COMPOSE["services"].items() if "build" in s and "command" in s])
def test_cato_services_parse_with_the_real_cli(name: str) -> None:
    service = COMPOSE["services"][name]
    args = parser().parse_args(service["command"])
    assert args.command in {"worker", "agent", "beat", "provisioner"}
    assert service["environment"]["CATO_REDIS_URL"].startswith("redis://redis:")


def test_redis_never_evicts_broker_keys() -> None:
    assert "noeviction" in COMPOSE["services"]["redis"]["command"]
