import pytest

from workers.validation import strip_fences, validate


def test_python_is_parsed() -> None:
    assert validate("def f(x):\n    return x + 1\n", "python").valid
    bad = validate("def f(x:\n    return x\n", "python")
    assert not bad.valid and bad.checker == "python-ast" and "line" in bad.message


def test_fenced_answers_are_unwrapped() -> None:
    assert strip_fences("```python\nx = 1\n```") == "x = 1"
    assert validate("```python\nx = 1\n```", "python").valid


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        ("fn main() { let v = vec![1, 2]; }", True),
        ("fn main() { let v = vec![1, 2; }", False),
        ('int main() { puts("}"); return 0; }', True),  # brackets inside strings are ignored
        ("int f() { // closing } in a comment\n", False),
        ("func f() {", False),
    ],
)
def test_other_languages_get_the_bracket_check(code: str, ok: bool) -> None:
    v = validate(code, "rust")
    assert v.valid is ok and v.checker == "brackets"


def test_empty_output_is_invalid() -> None:
    assert not validate("  \n", "go").valid
