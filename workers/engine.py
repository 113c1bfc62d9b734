"""The engine interface: what a worker needs from an LLM engine.

One engine lives in each worker process, on an asyncio loop of its own (see
``workers.replica``); Celery task threads hand it requests and read tokens back.
Every engine batches internally: many ``generate`` streams run at once on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


class EngineError(RuntimeError):
    """The engine could not start or failed while running; the worker must exit."""


class RequestTooLong(ValueError):
    """Prompt plus requested output does not fit the model's context window."""


@dataclass(frozen=True, slots=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    #: A fixed seed makes a redelivered node regenerate the same text, which keeps
    #: the client's stream consistent after a worker crash.
    seed: int | None = None
    #: the engine's scheduling priority, lower first (``policy.tiers.engine_priority``);
    #: engines without priorities ignore it
    priority: int = 0
    #: Generation ends at the first of these, which the text leaves out (held back until
    #: it is clear a piece of text does not begin one).
    stop: tuple[str, ...] = ()


@dataclass(slots=True)
class Outcome:
    """What an engine reports of one finished request (``generate(..., outcome=)``)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: ``stop`` (a stop sequence or the model's end), ``length`` (max_tokens) or ``abort``
    finish_reason: str | None = None


class Engine(Protocol):
    """An async, streaming, continuously batching text generator."""

    #: largest prompt + output tokens one request may use
    max_model_len: int

    async def start(self) -> None:
        """Load the model; raise ``EngineError`` on failure."""

    @property
    def errored(self) -> bool:
        """True once the engine died while running; the worker then exits (see replica)."""

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` occupies in this engine's tokenizer."""

    def generate(
        self, request_id: str, prompt: str, params: SamplingParams, outcome: Outcome | None = None
    ) -> AsyncIterator[str]:
        """Yield text deltas as the engine produces them; fill ``outcome`` as it ends.

        Raises ``RequestTooLong`` before any output when the request cannot fit, and
        ``EngineError`` when the engine itself died (no other request can run either).
        Closing the iterator early (``aclose``) must abort the request in the engine.
        """

    async def abort(self, request_id: str) -> None:
        """Stop a running request and free its batch slot."""

    async def shutdown(self) -> None:
        """Abort everything still running and release the device (and child processes)."""
