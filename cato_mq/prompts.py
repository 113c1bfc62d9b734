"""How an LLM node frames its request: one template per graph node template (``graphs.Node``).

The worker renders the prompt it sends to its engine with ``build_prompt``; the profiler and
the benchmarks render the same text to count its tokens. ``{context}`` is what the
retrieval node found.
"""

from __future__ import annotations

from typing import Any

#: How the streamed LLM call frames the request; {context} is what retrieval found.
TEMPLATES: dict[str, str] = {
    "complete": "{context}# Complete the following {language} code.\n{prompt}",
    "generate": "{context}# Write {language} code for this task.\n# Task: {prompt}\n",
    "summarize": "# Summarize what this {language} code does.\n{prompt}\n# Summary:",
    "translate": "# Translate this {language} code to {target_language}.\n{prompt}\n# {target_language}:\n",
}


def build_prompt(task: dict[str, Any], outputs: dict[str, Any], template: str) -> str:
    if task.get("raw"):  # rendered by the caller (the gateway): sent as it is
        return str(task["prompt"])
    context = "".join(
        f"# From {c['path']}:{c['line']}\n{c['text']}\n\n" for c in outputs.get("context", [])
    )
    return TEMPLATES[template].format(
        context=context,
        prompt=task["prompt"],
        language=task["language"],
        target_language=task.get("target_language") or "",
    )
