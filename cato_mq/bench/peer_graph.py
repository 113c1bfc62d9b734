"""A task graph run outside cato-mq, for the benchmark peers (Ray Serve, plain vLLM).

Retrieval and validation run with cato-mq's own step code and each LLM step goes to the
peer through ``llm(prompt) -> text``, so every system does the same work per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from cato_mq.graphs import graph_for
from cato_mq.prompts import build_prompt
from cato_mq.schemas import Kind


async def run_graph(task: dict[str, Any], llm: Callable[[str], Awaitable[str]]) -> dict[str, Any]:
    """The outputs of ``task``'s graph (``task`` as a worker sees it: a CodingTask dumped)."""
    from workers import steps

    outputs: dict[str, Any] = {}
    for node in graph_for(Kind(task["kind"])):
        if node.step == "retrieve":
            steps.retrieve(task, outputs)
        elif node.step == "validate":
            steps.validate(task, outputs)
        else:
            assert node.template is not None
            outputs["text"] = await llm(build_prompt(task, outputs, node.template))
    return outputs
