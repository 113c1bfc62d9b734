import pytest
from pydantic import ValidationError

from cato_mq.schemas import DEFAULT_SLA, MAX_CONTEXT_FILES, CodingTask, ContextFile, Kind


def test_defaults_follow_what_users_feel() -> None:
    assert CodingTask(kind="completion", prompt="x").effective_sla.metric == "ttft"
    assert CodingTask(kind="generation", prompt="x").effective_sla.metric == "ttft"
    assert CodingTask(kind="summarization", prompt="x").effective_sla.metric == "e2e"
    assert CodingTask(kind="translation", prompt="x", target_language="go").effective_sla.metric == "e2e"
    assert set(DEFAULT_SLA) == set(Kind)


def test_explicit_sla_and_tokens_win() -> None:
    t = CodingTask(kind="completion", prompt="x", sla={"metric": "e2e", "seconds": 3}, max_tokens=7)
    assert (t.effective_sla.metric, t.effective_sla.seconds, t.effective_max_tokens) == ("e2e", 3, 7)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "nope", "prompt": "x"}, "Input should be 'completion'"),
        ({"kind": "completion", "prompt": "x", "sla": {"metric": "ttft", "seconds": 0}}, "greater than 0"),
        ({"kind": "completion", "prompt": "x", "sla": {"metric": "p99", "seconds": 1}}, "'ttft' or 'e2e'"),
        ({"kind": "completion", "prompt": "x", "max_tokens": 0}, "greater than 0"),
        ({"kind": "completion", "prompt": "x", "surprise": 1}, "Extra inputs are not permitted"),
        ({"kind": "summarization", "prompt": "x", "target_language": "go"}, "only applies to translation"),
        ({"kind": "completion", "prompt": "x", "pool": "gpu-7b"}, "unknown pool 'gpu-7b'"),
    ],
)
def test_invalid_tasks_are_refused_with_a_clear_message(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CodingTask.model_validate(fields)


def test_context_counts_toward_the_size_limit() -> None:
    big = ContextFile(path="a.py", text="x" * 65_000)
    with pytest.raises(ValidationError, match=r"66005 characters; the limit is 65536 \(CATO_MAX_PROMPT_CHARS\)"):
        CodingTask(kind="completion", prompt="y" * 1001, context=(big,))


def test_context_paths_count_toward_the_size_limit() -> None:
    # 64 files of 1 KiB paths and no text: 65,536 characters of paths alone
    files = tuple(ContextFile(path=f"{i:04d}" + "p" * 1020, text="") for i in range(64))
    with pytest.raises(ValidationError, match=r"texts and paths\) is 65537 characters"):
        CodingTask(kind="completion", prompt="y", context=files)


def test_the_number_of_context_files_is_bounded() -> None:
    files = tuple(ContextFile(path=f"f{i}.py", text="") for i in range(MAX_CONTEXT_FILES + 1))
    with pytest.raises(ValidationError, match=f"at most {MAX_CONTEXT_FILES} items"):
        CodingTask(kind="completion", prompt="y", context=files)
    assert len(CodingTask(kind="completion", prompt="y", context=files[:-1]).context) == MAX_CONTEXT_FILES


def test_languages_are_normalised() -> None:
    t = CodingTask(kind="translation", prompt="x", language="Python", target_language="Rust")
    assert (t.language, t.target_language) == ("python", "rust")
