"""One replica: an engine on its own asyncio loop, shared by the worker's task threads.

Celery's threads pool runs up to B node tasks at once; each LLM node hands its request
to the engine loop and reads tokens back through a thread-safe queue, so all B requests
share one continuously batching engine. A heartbeat thread keeps the replica's entry in
the Redis registry fresh (in-flight count, concurrency), which the router and the
provisioner read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import redis

from cato_mq.policy.estimates import DEFAULTS
from cato_mq.settings import Settings
from cato_mq.state import connect, keys, registry
from cato_mq.state.dead import DeadLetters
from cato_mq.state.estimates import EstimateStore
from cato_mq.state.ledger import Ledger
from workers import fatal
from workers.cancels import Cancelled, Token, Watcher
from workers.engine import Engine, EngineError, Outcome, SamplingParams
from workers.gate import Gate
from workers.loop import LoopThread
from workers.outbox import Outbox
from workers.speed import SpeedModel

_END = object()
_CANCEL = object()


class NodeTimeout(TimeoutError):
    pass


class Replica:
    def __init__(
        self, settings: Settings, pool: str, name: str, engine: Engine, concurrency: int,
        seed_estimates: dict[str, float] | None = None, speed: SpeedModel | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.name = name
        self.engine = engine
        self.concurrency = concurrency
        self.redis = connect.connect(settings.redis_url, settings.redis_master)
        self.estimates = EstimateStore(self.redis)
        self.ledger = Ledger(self.redis, settings.result_ttl_s, settings.window_s)
        self.outbox = Outbox(self.redis, settings.flush_s, self.ledger, settings.result_ttl_s,
                             record_flush_s=settings.record_flush_s)
        self.dead = DeadLetters(self.redis)  # where a message that is no node's goes
        #: the requests running here, and the cancels that stop them (``workers.cancels``)
        self.cancels = Watcher(self.redis)
        self._seed = {**DEFAULTS, **(seed_estimates or {})}
        self.speed = speed
        #: cato+ only: SABER-style admission in front of the engine
        self.gate = (
            Gate(speed.per_request, first_token=speed.first_token_s, batch=speed.profile.max_num_seqs)
            if speed and settings.routing == "cato+" else None
        )
        self._inflight = 0
        #: ``ready`` while consuming; ``draining`` once an agent cancelled its consumers
        self.state = "ready"
        self._lock = threading.Lock()
        #: one registry write at a time: the heartbeat thread and a task thread's immediate
        #: beat must not land out of order, leaving an older in-flight count in the registry
        self._beat_lock = threading.Lock()
        self._stop = threading.Event()
        self._engine_loop = LoopThread("engine-loop")
        self.loop = self._engine_loop.loop
        self._beat_thread = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)

    def start(self) -> None:
        """Load the engine (raises if it cannot start) and seed the pool's estimates."""
        self._engine_loop.run(self.engine.start())
        self.estimates.seed(self.pool, self._seed, self.speed.alone() if self.speed else None)

    def join(self) -> None:
        """Enter the registry once Celery consumes: from now on the router counts us."""
        self.cancels.start()
        self.beat()
        self._beat_thread.start()

    def close(self) -> None:
        self._stop.set()
        self.cancels.close()
        self.outbox.close()
        with contextlib.suppress(Exception):
            self._engine_loop.run(self.engine.shutdown(), timeout=30)
        self._engine_loop.close()
        if self._beat_thread.is_alive():  # a beat in progress must not re-add us after the HDEL
            self._beat_thread.join(timeout=5)
        with contextlib.suppress(redis.RedisError):
            self.redis.hdel(keys.replicas(self.pool), self.name)

    @property
    def inflight(self) -> int:
        return self._inflight

    def drain(self) -> None:
        """Announce at once that we take no new work (the router then skips our slots)."""
        self.state = "draining"
        with contextlib.suppress(redis.RedisError):
            self.beat()

    def beat(self) -> None:
        """Our registry entry; in the same round trip, the cancel markers of what runs here."""
        with self._beat_lock:
            pipe = self.redis.pipeline(transaction=False)
            drift = self.speed.drift if self.speed else 1.0
            entry = registry.Entry(self._inflight, self.concurrency, time.time(), self.state, drift)
            registry.write(pipe, self.pool, self.name, entry, self.settings.heartbeat_s)
            swept = self.cancels.sweep_on(pipe)
            replies = pipe.execute()
        swept(replies[-1] if len(replies) > 1 else None)

    def cancelled(self, request_id: str, kind: str = "") -> None:
        """A node of a cancelled request stopped here: count the request cancelled (once,
        whichever worker stops it first) and announce our in-flight count at once."""
        try:
            self.ledger.cancelled(request_id, self.pool, time.time(), kind)
            self.beat()
        except redis.RedisError as exc:  # the marker stays: a later node, or none, counts it
            logging.getLogger("cato_mq.worker").warning("cancel of %s not counted: %s", request_id, exc)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_s):
            if self.engine.errored:  # died while idle: leave before taking a task it cannot run
                fatal.engine_died(self.name, self.close, EngineError("engine reported itself dead"))
            with contextlib.suppress(redis.RedisError):
                self.beat()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        with self._lock:
            self._inflight += 1
        try:
            yield
        finally:
            with self._lock:
                self._inflight -= 1

    def generate(
        self, request_id: str, prompt: str, params: SamplingParams, timeout_s: float,
        timing: dict[str, float] | None = None, token: Token | None = None, outcome: Outcome | None = None,
    ) -> Iterator[str]:
        """Stream deltas from the engine into this thread; abort the request on timeout, on
        close, or when ``token`` is cancelled (then ``Cancelled`` is raised here).

        ``timing`` receives the engine's own speed, taken on the engine's loop where no
        task-thread or Redis delay is in it: ``engine_ttft_s`` and ``engine_per_token_s``.
        The profiler calibrates the simulated engine from these. ``outcome`` receives the
        engine's token counts and finish reason.
        """
        out: queue.Queue[Any] = queue.Queue()
        if token is not None:
            token.check()  # cancelled before it reached the engine: it never does

        async def pump() -> None:
            try:
                began = time.monotonic()
                first = last = 0.0
                count = 0
                stream = self.engine.generate(request_id, prompt, params, outcome) if outcome is not None \
                    else self.engine.generate(request_id, prompt, params)
                async for delta in stream:
                    last = time.monotonic()
                    first = first or last
                    count += 1
                    out.put(delta)
                if timing is not None and count:
                    timing["engine_ttft_s"] = first - began
                    timing["engine_per_token_s"] = (last - first) / max(1, count - 1)
                out.put(_END)
            except asyncio.CancelledError:
                out.put(_END)
                raise
            except BaseException as exc:  # handed to the task thread, which re-raises it
                out.put(exc)

        future = asyncio.run_coroutine_threadsafe(pump(), self.loop)
        unhook = token.on_cancel(lambda: out.put(_CANCEL)) if token is not None else None
        until = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    item = out.get(timeout=max(0.0, until - time.monotonic()))
                except queue.Empty:
                    raise NodeTimeout(f"node exceeded {timeout_s:.1f} s") from None
                if item is _CANCEL:
                    raise Cancelled(f"request {request_id} cancelled by its client")
                if item is _END:
                    return
                if isinstance(item, EngineError):
                    fatal.engine_died(self.name, self.close, item)  # never returns: the node stays un-acked
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            future.cancel()  # a no-op when done; otherwise aborts the request in the engine
            if unhook is not None:
                unhook()
