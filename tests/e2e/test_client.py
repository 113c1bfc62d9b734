"""The user's path end to end: submit -> Redis -> Celery chain -> worker process -> stream back."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


@pytest.mark.parametrize("arrived_at", [float("nan"), float("-inf"), float("inf")])
def test_submit_rejects_an_arrival_that_is_no_time(rds: redis.Redis, arrived_at: float) -> None:
    with pytest.raises(ValueError, match="arrived_at must be a finite time"):
        submit(TASKS[Kind.completion], arrived_at=arrived_at)
    assert rds.dbsize() == 0


FIELDS = st.fixed_dictionaries(
    {"kind": st.sampled_from(["completion", "generation", "summarization", "translation", "bogus", ""])},
    optional={
        "prompt": st.text(max_size=50) | st.integers(),
        "language": st.text(max_size=40),
        "target_language": st.none() | st.text(max_size=40),
        "pool": st.sampled_from(["default", "other", "nope", ""]),
        "sla": st.none() | st.fixed_dictionaries({"metric": st.sampled_from(["ttft", "e2e", "x"]),
                                                  "seconds": st.floats(allow_nan=True, allow_infinity=True)}),
        "max_tokens": st.none() | st.integers(min_value=-5, max_value=40_000),
        "temperature": st.floats(allow_nan=True, allow_infinity=True),
        "context": st.lists(st.fixed_dictionaries({"path": st.text(max_size=1100), "text": st.text(max_size=2000)}),
                            max_size=300),
        "extra": st.integers(),
    },
)


@given(FIELDS, st.none() | st.floats(allow_nan=True, allow_infinity=True))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzzed_requests_are_refused_at_the_boundary_or_sound(
    rds: redis.Redis, fields: dict[str, object], arrived_at: float | None
) -> None:
    from cato_mq.schemas import MAX_CONTEXT_FILES
    from cato_mq.settings import get_settings

    try:
        task = CodingTask.model_validate(fields)
    except ValidationError as exc:
        assert all(e["msg"] for e in exc.errors())  # one line per problem, each saying what is wrong
        return
    assert task.size <= get_settings().max_prompt_chars and len(task.context) <= MAX_CONTEXT_FILES
    assert task.effective_sla.seconds > 0 and task.effective_max_tokens > 0
    if arrived_at is not None and not math.isfinite(arrived_at):
        with pytest.raises(ValueError, match="finite"):
            submit(task, arrived_at=arrived_at)
        assert rds.dbsize() == 0  # refused: nothing reached Redis
