"""The OpenAI request bodies the gateway accepts, validated with pydantic.

Fields an editor sends that change nothing here are accepted (``user``, zero penalties,
``n: 1``); fields that would ask for something cato-mq does not do (``n > 1``, ``best_of``,
``logprobs``, ``echo``, tools, a JSON response format) are refused by name
(``refuse_unsupported``) rather than silently ignored. Fields OpenAI's API does not
define are ignored, as vLLM's server does.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cato_mq.gateway.errors import invalid, unsupported

Stop = str | list[str] | None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class _Common(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    max_tokens: int | None = Field(None, gt=0)
    #: OpenAI's defaults: sampling at temperature 1, top_p 1
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    stop: Stop = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: int | None = Field(None, ge=0, lt=2**63)
    user: str | None = None
    # accepted only at the value that asks for nothing more (see ``refuse_unsupported``)
    n: int = 1
    logprobs: Any = None
    logit_bias: dict[str, float] | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    @field_validator("temperature", "top_p", mode="before")
    @classmethod
    def _null_is_default(cls, v: Any, info: Any) -> Any:
        return (1.0 if v is None else v)

    @property
    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class CompletionRequest(_Common):
    prompt: str | list[str]
    suffix: str | None = None
    best_of: int | None = None
    echo: bool = False

    def text(self) -> str:
        if isinstance(self.prompt, str):
            return self.prompt
        if len(self.prompt) != 1:
            raise unsupported("prompt", f"one prompt per request, not a batch of {len(self.prompt)}")
        return self.prompt[0]


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self, index: int) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        parts = []
        for part in self.content:
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise unsupported(f"messages.{index}.content", f"only text parts, not {part.get('type')!r}")
            parts.append(part["text"])
        return "".join(parts)


class ChatRequest(_Common):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, gt=0)
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    response_format: dict[str, Any] | None = None

    def rendered_messages(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.text(i)} for i, m in enumerate(self.messages)]

    @property
    def output_budget(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


def refuse_unsupported(req: _Common) -> None:
    """400 naming the first field that asks for something cato-mq does not do."""
    if req.n != 1:
        raise unsupported("n", "one choice per request (n = 1)")
    if req.logprobs not in (None, False, 0):
        raise unsupported("logprobs", "log probabilities are not returned")
    if req.logit_bias:
        raise unsupported("logit_bias", "token biases are not applied")
    for name in ("presence_penalty", "frequency_penalty"):
        if getattr(req, name):
            raise unsupported(name, "penalties are not applied (send 0 or leave it out)")
    if isinstance(req, CompletionRequest):
        if req.best_of not in (None, 1):
            raise unsupported("best_of", "one candidate per request")
        if req.echo:
            raise unsupported("echo", "the prompt is not echoed")
    if isinstance(req, ChatRequest):
        for name in ("tools", "functions"):
            if getattr(req, name):
                raise unsupported(name, "tool calls are not supported")
        if req.tool_choice not in (None, "none"):
            raise unsupported("tool_choice", "tool calls are not supported")
        if req.response_format and req.response_format.get("type", "text") != "text":
            raise unsupported("response_format", "only text responses")
    if isinstance(req.stop, list) and not all(isinstance(s, str) and s for s in req.stop):
        raise invalid("stop must be non-empty strings", param="stop")
