"""Fixtures of the state tests that talk to Redis servers of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cato_mq import app as cato_app
from tests.conftest import TEST_ENV
from tests.state.servers import Point


@pytest.fixture
def point(monkeypatch: pytest.MonkeyPatch) -> Iterator[Point]:
    """Point this process (client, router, Celery app) at a URL."""
    def at(url: str) -> None:
        monkeypatch.setenv("CATO_REDIS_URL", url)
        for k, v in TEST_ENV.items():
            monkeypatch.setenv(k, v)
        cato_app.reset()

    yield at
    cato_app.reset()
