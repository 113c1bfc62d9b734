"""The user's path end to end: submit -> Redis -> Celery chain -> worker process -> stream back."""

from __future__ import annotations

import subprocess
import sys

import pytest
import redis
from pydantic import ValidationError

from cato_mq import CodingTask, ContextFile, Kind, Result, handle, submit
from tests.conftest import WorkerFactory

CONTEXT = (
    ContextFile(
        path="mathutil.py",
        text="def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    ),
    ContextFile(path="strings.py", text="def shout(s):\n    return s.upper()\n"),
)
TASKS = {
    Kind.completion: CodingTask(kind="completion", prompt="def fib_list(n):\n    ", context=CONTEXT),
    Kind.generation: CodingTask(kind="generation", prompt="return the n-th fibonacci number", context=CONTEXT),
    Kind.summarization: CodingTask(kind="summarization", prompt=CONTEXT[0].text, max_tokens=32),
    Kind.translation: CodingTask(kind="translation", prompt=CONTEXT[0].text, target_language="rust", max_tokens=48),
}
EXPECTED_STEPS = {
    Kind.completion: ["retrieve", "llm"],
    Kind.generation: ["retrieve", "llm", "validate"],
    Kind.summarization: ["llm"],
    Kind.translation: ["llm", "validate"],
}


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_streams_and_completes(workers: WorkerFactory, kind: Kind) -> None:
    workers("-c", "4")
    h = submit(TASKS[kind])
    streamed = "".join(h.stream(timeout=30))
    result = h.result(timeout=30)
    assert streamed == result.text and result.text
    assert [n.step for n in result.nodes] == EXPECTED_STEPS[kind]
    assert all(n.tier in ("violated", "at_risk", "safe") for n in result.nodes)
    assert result.e2e_s > 0 and result.ttft_s is not None and 0 < result.ttft_s <= result.e2e_s
    assert h.client_ttft_s is not None
    assert result.met_sla == ((result.ttft_s if result.sla.metric == "ttft" else result.e2e_s) <= result.sla.seconds)
    if kind in (Kind.generation, Kind.translation):
        assert result.valid is not None and result.validation
    if kind is Kind.completion:
        assert result.nodes[0].detail["snippets"] >= 1  # retrieval found fib in mathutil.py


def test_result_is_readable_from_another_process(workers: WorkerFactory, redis_url: str) -> None:
    workers()
    h = submit(TASKS[Kind.summarization])
    out = subprocess.run(
        [sys.executable, "-m", "cato_mq.cli", "result", h.request_id, "--timeout", "30"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert Result.model_validate_json(out.stdout) == handle(h.request_id).result(timeout=5)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "refactoring", "prompt": "x"}, "kind"),
        ({"kind": "completion", "prompt": "x", "sla": {"metric": "ttft", "seconds": -1}}, "greater than 0"),
        ({"kind": "completion", "prompt": "x" * 70_000}, "limit is 65536"),
        ({"kind": "completion", "prompt": "x", "pool": "nope"}, "unknown pool 'nope'"),
        ({"kind": "translation", "prompt": "x"}, "target_language"),
        ({"kind": "completion", "prompt": ""}, "at least 1 character"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_enqueued(
    rds: redis.Redis, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        submit(CodingTask.model_validate(fields))
    assert rds.dbsize() == 0


def test_submit_rejects_a_future_arrival(rds: redis.Redis) -> None:
    import time

    with pytest.raises(ValueError, match="future"):
        submit(TASKS[Kind.completion], arrived_at=time.time() + 60)
    assert rds.dbsize() == 0
