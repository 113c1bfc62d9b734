"""A simulated engine with continuous-batching timing, for CPU-only load tests.

It runs ``EngineTiming``'s step model (``cato_mq.engine.timing``) on the real clock, as
vLLM V1 schedules: each step decodes one token for every request past its prompt and
prefills prompts within the step's token budget (``plan_step``: chunks of long prompts,
the first token at the end of the step that finishes a prompt), up to ``max_num_seqs``
requests share the engine, and the text is filler drawn from the prompt's identifiers
(seeded, so a redelivered node says the same again).
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from cato_mq.engine.timing import EngineTiming
from workers.engine import Outcome, RequestTooLong, SamplingParams

#: Python keywords and punctuation mixed into generated text so it looks like code.
_FILLER = ("def", "return", "if", "for", "in", "(", ")", ":", "=", "+", "self", "None", "\n    ")


@dataclass(eq=False)
class _Request:
    prompt_tokens: int
    left: int
    out: asyncio.Queue[str | None]
    rng: random.Random
    words: list[str]
    stop: tuple[str, ...] = ()
    cancelled: bool = False
    #: text produced but not yet sent: it may be the beginning of a stop sequence
    held: str = ""
    produced: int = 0
    finish: str | None = None
    #: prompt tokens not prefilled yet (V1 chunks long prompts over several steps)
    prefill_left: int = -1

    def emit(self, token: str) -> bool:
        """Send what of ``token`` cannot begin a stop sequence; True when one is complete."""
        text = self.held + token
        ends = [i for s in self.stop if (i := text.find(s)) >= 0]
        if ends:
            self.held = ""
            if min(ends):
                self.out.put_nowait(text[: min(ends)])
            return True
        keep = next((k for k in range(min(len(text), max(map(len, self.stop), default=1) - 1), 0, -1)
                     if any(s.startswith(text[-k:]) for s in self.stop)), 0)
        self.held = text[len(text) - keep :]
        if len(text) > keep:
            self.out.put_nowait(text[: len(text) - keep])
        return False


class SimEngine:
    def __init__(
        self, profile: EngineTiming | None = None, time_scale: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.profile = profile or EngineTiming()
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

    async def generate(
        self, request_id: str, prompt: str, params: SamplingParams, outcome: Outcome | None = None
    ) -> AsyncIterator[str]:
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
        req = _Request(n, params.max_tokens, asyncio.Queue(), random.Random(seed), words, params.stop)
        self._waiting.append(req)
        self._wake.set()
        try:
            while (piece := await req.out.get()) is not None:
                yield piece
        finally:
            req.cancelled = True  # frees the batch slot at the next step
            if outcome is not None:
                outcome.prompt_tokens, outcome.completion_tokens = n, req.produced
                outcome.finish_reason = req.finish or "abort"

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
            started = [r for r in self._running if r.prefill_left > 0]
            decoding = len(self._running) - len(started)
            waiting = [r for r in self._waiting if not r.cancelled]
            context = sum(r.prompt_tokens + r.produced for r in self._running if r.prefill_left <= 0)
            plan = self.profile.plan_step(decoding, [r.prefill_left for r in started],
                                          [r.prompt_tokens for r in waiting], context)
            admitted = waiting[:len(plan.admitted)]
            self._waiting = deque(waiting[len(admitted):])
            for req in admitted:
                req.prefill_left = req.prompt_tokens
            await self._pace(plan.seconds * self._scale)
            self.steps += 1
            for req, chunk in zip([*started, *admitted], [*plan.started, *plan.admitted], strict=True):
                req.prefill_left -= chunk
            self._running += admitted
            for req in self._running:
                # a prompt still part-way through gives no token yet; the step that ends it gives the first
                if req.cancelled or req.left <= 0 or req.prefill_left > 0:
                    continue
                req.left -= 1
                req.produced += 1
                stopped = req.emit(self._token(req))
                if stopped or req.left == 0:
                    if req.held:
                        req.out.put_nowait(req.held)
                    req.finish = "stop" if stopped else "length"
                    req.out.put_nowait(None)
                    req.cancelled = True
