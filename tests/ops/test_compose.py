"""compose.yaml cannot be run here (no Docker engine), so check what can be: Debian's
docker-compose validates every profile, each profile runs exactly one agent, every service
that runs cato-mq passes a command line the real CLI parser accepts, secrets are on by
default, and every image installs for real and runs as a non-root user."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cato_mq.cli import parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PROFILES = ("sim", "cpu", "gpu", "npu", "monitoring")
AGENTS = {"sim": "agent", "cpu": "agent-cpu", "gpu": "agent-gpu", "npu": "agent-npu"}


def running(profiles: set[str]) -> set[str]:
    """The services compose starts with these profiles: those with no profile, and those in one."""
    return {n for n, s in SERVICES.items() if not s.get("profiles") or profiles & set(s["profiles"])}


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed")
@pytest.mark.parametrize("profile", ["", *PROFILES])
def test_every_profile_validates_with_docker_compose(profile: str, tmp_path: Path) -> None:
    args = ["docker-compose", "--env-file", str(ROOT / ".env.example"), "-f", str(ROOT / "compose.yaml")]
    args += ["--profile", profile] if profile else []
    done = subprocess.run([*args, "config", "-q"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("profile", AGENTS)
def test_each_engine_profile_runs_one_agent_and_the_whole_control_plane(profile: str) -> None:
    up = running({profile})
    assert {s for s in up if s.startswith("agent")} == {AGENTS[profile]}
    assert {"redis", "beat", "provisioner", "gateway", "flower"} <= up
    assert "prometheus" not in up and {"prometheus", "grafana"} <= running({profile, "monitoring"})


def test_the_default_profile_is_the_sim_fleet() -> None:
    env = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
               if line and not line.startswith("#"))
    assert env["COMPOSE_PROFILES"] == "sim"


@pytest.mark.parametrize("name", [n for n, s in SERVICES.items() if "build" in s and "entrypoint" not in s])
def test_cato_services_parse_with_the_real_cli(name: str) -> None:
    service = SERVICES[name]
    args = parser().parse_args(service["command"])
    assert args.command in {"worker", "agent", "beat", "provisioner", "gateway", "metrics"}
    assert service["environment"]["CATO_REDIS_URL"].startswith("redis://:${CATO_REDIS_PASSWORD")


def test_redis_persists_needs_a_password_never_evicts_and_stays_inside() -> None:
    redis = SERVICES["redis"]
    command = " ".join(redis["command"])
    for flag in ("--appendonly yes", "--appendfsync everysec", "--requirepass", "--maxmemory-policy noeviction"):
        assert flag in command
    assert "ports" not in redis  # only the compose network reaches it
    assert "redis-data:/data" in redis["volumes"]


def test_the_gateway_needs_keys_and_flower_a_login() -> None:
    gateway = SERVICES["gateway"]
    assert gateway["environment"]["CATO_API_KEYS_FILE"] == "/run/secrets/api_keys"
    assert "api_keys" in gateway["secrets"] and "healthcheck" in gateway
    flower = SERVICES["flower"]
    assert any(a.startswith("--basic_auth=${FLOWER_LOGIN") for a in flower["command"])
    assert any(a.startswith("--db=/data/") for a in flower["command"])


@pytest.mark.parametrize("dockerfile", sorted((ROOT / "ops").glob("*.Dockerfile")), ids=lambda p: p.name)
def test_images_fail_on_a_failed_install_and_run_as_a_user(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert "|| true" not in text
    lines = [line.strip() for line in text.splitlines()]
    install = max(i for i, line in enumerate(lines) if "pip install" in line)
    user = [i for i, line in enumerate(lines) if line.startswith("USER ")]
    assert user and user[-1] > install and lines[user[-1]] != "USER root"
    for line in lines:
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"{dockerfile.name} copies {source}, which is not in the repository"


def test_every_dockerfile_compose_builds_exists() -> None:
    built = {s["build"]["dockerfile"] for s in SERVICES.values() if "build" in s}
    assert built == {f"ops/{p.name}" for p in (ROOT / "ops").glob("*.Dockerfile")}
