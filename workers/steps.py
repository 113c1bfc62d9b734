"""What each step of a task graph does. Plain functions; ``workers.tasks`` wraps them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from cato_mq.prompts import build_prompt
from workers import retrieval, validation


def retrieve(task: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    files = [(f["path"], f["text"]) for f in task["context"]]
    hits = retrieval.search(task["prompt"], files)
    outputs["context"] = [
        {"path": h.path, "line": h.start_line, "text": h.text, "score": round(h.score, 3)} for h in hits
    ]
    return {"snippets": len(hits), "searched_files": len(files)}


def llm(
    task: dict[str, Any], outputs: dict[str, Any], template: str,
    generate: Callable[[str], Iterator[str]], on_delta: Callable[[str], None],
) -> dict[str, Any]:
    prompt = build_prompt(task, outputs, template)
    parts: list[str] = []
    for delta in generate(prompt):
        parts.append(delta)
        on_delta(delta)
    outputs["text"] = "".join(parts)
    return {"prompt_chars": len(prompt), "output_chars": len(outputs["text"])}


def validate(task: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    language = task.get("target_language") or task["language"]
    verdict = validation.validate(outputs.get("text", ""), language)
    outputs["valid"] = verdict.valid
    outputs["validation"] = f"{verdict.checker}: {verdict.message}"
    return {"valid": verdict.valid, "checker": verdict.checker}
