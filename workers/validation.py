"""Validation nodes: does the produced code parse?

Python is parsed with ``ast``. Other languages have no parser at hand in a worker, so
they get a lighter structural check: brackets balance outside string literals and
comments, and the text is not empty. It catches truncated output (the common failure of
a cut-off generation) but not type or syntax errors inside balanced code.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

_PAIRS = {")": "(", "]": "[", "}": "{"}
_LINE_COMMENT = {"python": "#", "ruby": "#", "shell": "#"}


@dataclass(frozen=True, slots=True)
class Verdict:
    valid: bool
    checker: str
    message: str


def strip_fences(text: str) -> str:
    """Drop a Markdown code fence a model may wrap its answer in."""
    lines = text.strip().splitlines()
    if lines and lines[0].startswith("```"):
        lines = lines[1:]
        if lines and lines[-1].startswith("```"):
            lines = lines[:-1]
    return "\n".join(lines)


def check_python(code: str) -> Verdict:
    try:
        ast.parse(code)
    except SyntaxError as exc:
        return Verdict(False, "python-ast", f"line {exc.lineno}: {exc.msg}")
    return Verdict(True, "python-ast", "parses")


def check_brackets(code: str, language: str) -> Verdict:
    comment = _LINE_COMMENT.get(language, "//")
    stack: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(code):
        ch = code[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif code.startswith(comment, i):
            i = code.find("\n", i)
            if i < 0:
                break
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            stack.append(ch)
        elif ch in _PAIRS and (not stack or stack.pop() != _PAIRS[ch]):
            return Verdict(False, "brackets", f"unbalanced {ch!r} at offset {i}")
        i += 1
    if stack:
        return Verdict(False, "brackets", f"{len(stack)} bracket(s) left open")
    return Verdict(True, "brackets", "brackets balance")


def validate(code: str, language: str) -> Verdict:
    code = strip_fences(code)
    if not code.strip():
        return Verdict(False, "empty", "no code produced")
    if language == "python":
        return check_python(code)
    return check_brackets(code, language)
