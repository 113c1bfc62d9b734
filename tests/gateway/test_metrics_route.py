"""The gateway's /metrics: Prometheus text about the requests it served, with no API key."""

from __future__ import annotations

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.conftest import Gateway


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for f in text_string_to_metric_families(text)
            for s in f.samples if s.name == name}


def test_metrics_count_the_requests_served_through_the_gateway(gateway: Gateway, fleet: redis.Redis) -> None:
    client = gateway.client()
    for i in range(3):
        client.completions.create(model="default", prompt=f"def f{i}():", max_tokens=4)  # type: ignore[attr-defined]
    answer = httpx.get(f"{gateway.url}/metrics", timeout=30)  # no key: Prometheus sends none
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    served = samples(answer.text, "cato:requests_total")
    completions = {labels: v for labels, v in served.items() if ("kind", "completion") in labels}
    assert sum(completions.values()) == 3
    ttft = samples(answer.text, "cato:time_to_first_token_seconds_count")
    assert ttft[(("kind", "completion"), ("pool", "default"))] == 3
