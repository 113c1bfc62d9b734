"""Task graphs, declared as data: which nodes each kind of request runs, in order.

A graph is a chain (CATO's graphs for these four tasks have no branches), so the
critical path is the whole chain. Steps name what a worker does:

* ``retrieve``: lexical search over the context the request carries;
* ``llm``: one model call; ``template`` says how the prompt is framed, ``streams`` marks
  the call whose tokens the user sees (its first token is what a TTFT SLA measures);
* ``validate``: parse the produced code and record the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cato_mq.schemas import Kind

Step = Literal["retrieve", "llm", "validate", "noop"]


@dataclass(frozen=True, slots=True)
class Node:
    step: Step
    template: str | None = None
    streams: bool = False

    def first_token_decides(self, metric: str) -> bool:
        """Its first token is what the request's SLA counts: the streamed call under TTFT."""
        return self.streams and metric == "ttft"


GRAPHS: dict[Kind, tuple[Node, ...]] = {
    Kind.completion: (Node("retrieve"), Node("llm", "complete", streams=True)),
    Kind.generation: (Node("retrieve"), Node("llm", "generate", streams=True), Node("validate")),
    Kind.summarization: (Node("llm", "summarize", streams=True),),
    Kind.translation: (Node("llm", "translate", streams=True), Node("validate")),
}


def graph_for(kind: Kind) -> tuple[Node, ...]:
    return GRAPHS[kind]
