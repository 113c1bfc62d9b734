"""The exporter served over real HTTP from this process, and its text parsed back with
prometheus-client's own parser."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from cato_mq.metrics.serve import server
from cato_mq.settings import Settings


def scrape(url: str) -> list[Sample]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels``."""
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) == 1, f"{len(found)} samples of {name}{labels}"
    return found[0]


@pytest.fixture
def endpoint(rds: redis.Redis) -> Iterator[str]:
    """``http://127.0.0.1:PORT/metrics`` of an exporter on the test's Redis."""
    httpd = server(rds, "127.0.0.1", 0, Settings.from_env())
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/metrics"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)
