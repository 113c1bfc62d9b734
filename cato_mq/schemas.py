"""The request a user submits and the result they get back."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cato_mq.settings import get_settings


class Kind(StrEnum):
    completion = "completion"
    generation = "generation"
    summarization = "summarization"
    translation = "translation"


Metric = Literal["ttft", "e2e"]

#: What users of each kind feel (CATO): completion and generation wait for the first token,
#: summarization and translation for the whole answer. Seconds are our own defaults for a
#: small code model; completion is interactive typing, so it gets the tightest budget.
DEFAULT_SLA: dict[Kind, tuple[Metric, float]] = {
    Kind.completion: ("ttft", 1.0),
    Kind.generation: ("ttft", 2.0),
    Kind.summarization: ("e2e", 10.0),
    Kind.translation: ("e2e", 15.0),
}
#: Output budget per kind when the caller gives none: completions are short, translations long.
DEFAULT_MAX_TOKENS: dict[Kind, int] = {
    Kind.completion: 64,
    Kind.generation: 256,
    Kind.summarization: 128,
    Kind.translation: 256,
}
#: Upper bound on any SLA: beyond an hour nothing here is interactive, and results expire.
MAX_SLA_S = 3600.0
#: Context files one request may carry: retrieval searches them all on every request.
MAX_CONTEXT_FILES = 256
#: Stop sequences one request may carry (IDE plugins send a dozen or so), and their length.
MAX_STOP = 32
MAX_STOP_CHARS = 256


class SLA(BaseModel):
    model_config = ConfigDict(frozen=True)
    metric: Metric
    seconds: float = Field(gt=0, le=MAX_SLA_S)


class ContextFile(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str = Field(min_length=1, max_length=1024)
    text: str


class CodingTask(BaseModel):
    """One coding request. Validation happens here, before anything touches Redis."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    prompt: str = Field(min_length=1)
    language: str = Field("python", min_length=1, max_length=32)
    target_language: str | None = Field(None, min_length=1, max_length=32)
    pool: str = "default"
    sla: SLA | None = None
    max_tokens: int | None = Field(None, gt=0, le=32_768)
    temperature: float = Field(0.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    #: Seed of the sampler; by default one derived from the request id (a redelivered node
    #: then says the same again).
    seed: int | None = Field(None, ge=0, lt=2**63)
    #: Generation ends on the engine at the first of these (the text excludes it).
    stop: tuple[str, ...] = Field((), max_length=MAX_STOP)
    #: The prompt goes to the model as it is: no framing template and no retrieved context
    #: (the gateway sends prompts an editor or a chat template already rendered).
    raw: bool = False
    context: tuple[ContextFile, ...] = Field((), max_length=MAX_CONTEXT_FILES)

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for s in v:
            if not 0 < len(s) <= MAX_STOP_CHARS:
                raise ValueError(f"each stop sequence must be 1 to {MAX_STOP_CHARS} characters")
        return v

    @field_validator("language", "target_language")
    @classmethod
    def _lower(cls, v: str | None) -> str | None:
        return v.lower() if v is not None else v

    @model_validator(mode="after")
    def _check(self) -> CodingTask:
        settings = get_settings()
        size = self.size
        if size > settings.max_prompt_chars:
            raise ValueError(
                f"prompt plus context (texts and paths) is {size} characters; the limit is "
                f"{settings.max_prompt_chars} (CATO_MAX_PROMPT_CHARS)"
            )
        if self.pool not in settings.pools:
            raise ValueError(
                f"unknown pool {self.pool!r}; configured pools: {', '.join(settings.pools)} (CATO_POOLS)"
            )
        if self.kind is Kind.translation and self.target_language is None:
            raise ValueError("translation needs target_language")
        if self.kind is not Kind.translation and self.target_language is not None:
            raise ValueError(f"target_language only applies to translation, not {self.kind.value}")
        return self

    @property
    def size(self) -> int:
        """Characters the request carries: what ``CATO_MAX_PROMPT_CHARS`` bounds."""
        return len(self.prompt) + sum(len(f.text) + len(f.path) for f in self.context)

    @property
    def effective_sla(self) -> SLA:
        if self.sla is not None:
            return self.sla
        metric, seconds = DEFAULT_SLA[self.kind]
        return SLA(metric=metric, seconds=seconds)

    @property
    def effective_max_tokens(self) -> int:
        return self.max_tokens or DEFAULT_MAX_TOKENS[self.kind]


class NodeRecord(BaseModel):
    """What happened to one node of the graph."""

    index: int
    step: str
    tier: str
    worker: str
    redelivered: bool
    #: which delivery of the node's message ran it (1: the first; more after a crash)
    attempt: int = 1
    #: of the deliveries before it, how many a worker handed back on purpose (cato+'s gate)
    requeues: int = 0
    deadline: float
    queued_at: float
    started_at: float
    ended_at: float
    met_deadline: bool
    detail: dict[str, object] = {}


class Result(BaseModel):
    request_id: str
    kind: Kind
    text: str
    ttft_s: float | None
    e2e_s: float
    sla: SLA
    met_sla: bool
    nodes: list[NodeRecord]
    valid: bool | None = None
    validation: str | None = None
    #: deliveries beyond the first, over all nodes: work a crash or a pause made redo
    redeliveries: int = 0
