"""The shipped Grafana dashboard asks only for series the exporter really emits, with label
names those series carry; Prometheus' config scrapes the endpoint compose runs."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import redis
import yaml

from beat import tick
from cato_mq.policy.provisioner_config import load
from cato_mq.settings import get_settings
from tests.conftest import WorkerFactory
from tests.metrics.conftest import scrape

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "ops" / "grafana" / "dashboards" / "cato-mq.json"
#: A series name, then optionally its ``{label matchers}``.
SELECTOR = re.compile(r"(cato:[a-z0-9_]+)(\{[^}]*\})?")
MATCHER = re.compile(r"([a-zA-Z_]+)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\bby\s*\(([^)]*)\)")


def panel_queries() -> list[str]:
    """Every query of every panel, as Prometheus would get it (Grafana's interval filled in)."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    return [e.replace("$__rate_interval", "1m") for e in exprs]


def test_every_panel_names_emitted_series_and_their_labels(
    workers: WorkerFactory, rds: redis.Redis, endpoint: str,
) -> None:
    workers()  # a live replica: its per-replica gauges are emitted too
    settings = get_settings()
    tick.run_tick(rds, settings, load(settings.pools), time.time())  # the provisioner's desired replicas
    samples = scrape(endpoint)
    labels: dict[str, set[str]] = {}
    for s in samples:
        labels.setdefault(s.name, set()).update(s.labels)
    queries = panel_queries()
    assert len(queries) >= 12
    wrong = []
    for expr in queries:
        used = SELECTOR.findall(expr)
        assert used, f"no cato series in {expr}"
        for name, matchers in used:
            if name not in labels:
                wrong.append(f"{name} is not emitted ({expr})")
                continue
            wrong += [f"{name} has no label {m} ({expr})" for m in MATCHER.findall(matchers) if m not in labels[name]]
        grouped = {g.strip() for by in GROUPING.findall(expr) for g in by.split(",") if g.strip()}
        carried = set.union(*(labels.get(n, set()) for n, _ in used))
        wrong += [f"no series of {expr} has the label {g}" for g in grouped - carried]
    assert not wrong, "\n".join(wrong)


def test_the_checker_catches_a_series_the_exporter_lacks() -> None:
    assert SELECTOR.findall('rate(cato:requests_totl{outcome="met"}[1m])') == [("cato:requests_totl",
                                                                              '{outcome="met"}')]
    assert MATCHER.findall('{outcome="met", kind=~"a|b"}') == ["outcome", "kind"]


def test_prometheus_scrapes_the_metrics_service() -> None:
    config = yaml.safe_load((ROOT / "ops" / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service = compose["services"]["metrics"]
    port = service["command"][service["command"].index("--port") + 1]
    assert f"metrics:{port}" in targets
