"""Cancellation on the worker: which requests run here, and stopping them when cancelled.

Every node task runs inside ``Watcher.watch(request_id)``, which hands it a ``Token``. A
cancel (``cato_mq.state.cancel``) reaches the token three ways, fastest first:

* the ``keys.cancels`` channel, which a thread of this worker listens to: the token is
  set within a millisecond or two, and an LLM node's engine request is aborted at once
  (``Replica.generate``), which frees its batch slot at the engine's next step;
* a cancel heard just before its node registered (popped, not yet watched) is remembered
  for ``RECENT_S`` and sets the token as the node registers;
* the heartbeat reads the markers of the requests running here (``sweep``), for a
  message lost while the listener reconnected.

A node popped after the cancel arrives marked by the transport and never starts.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import redis

from cato_mq.state import keys

if TYPE_CHECKING:
    from redis.client import Pipeline

log = logging.getLogger("cato_mq.worker")
#: A cancel heard for a request not running here is remembered this long.
RECENT_S = 30.0
#: Longest wait between two attempts to listen again while Redis is away.
MAX_BACKOFF_S = 2.0


class Cancelled(Exception):
    """The request was cancelled by its client: stop, write nothing more for it."""


class Token:
    """Set once the request is cancelled; callbacks run at that moment (in the setter's thread)."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self._lock = threading.Lock()
        self._set = False
        self._callbacks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._set

    def set(self) -> None:
        with self._lock:
            if self._set:
                return
            self._set = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` when cancelled (now, if it is); returns a function that unhooks it."""
        with self._lock:
            if not self._set:
                self._callbacks.append(callback)
                return lambda: self._unhook(callback)
        callback()
        return lambda: None

    def _unhook(self, callback: Callable[[], None]) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._callbacks.remove(callback)

    def check(self) -> None:
        if self._set:
            raise Cancelled(f"request {self.request_id} cancelled by its client")


class Watcher:
    def __init__(self, client: redis.Redis[str]) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._running: dict[str, list[Token]] = {}
        self._recent: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="cancels", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    @contextlib.contextmanager
    def watch(self, request_id: str) -> Iterator[Token]:
        token = Token(request_id)
        with self._lock:
            self._running.setdefault(request_id, []).append(token)
            heard = self._recent.pop(request_id, None) is not None
        if heard:
            token.set()
        try:
            yield token
        finally:
            with self._lock:
                tokens = self._running.get(request_id, [])
                if token in tokens:
                    tokens.remove(token)
                if not tokens:
                    self._running.pop(request_id, None)

    def cancel(self, request_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens = list(self._running.get(request_id, ()))
            if not tokens:
                self._recent = {r: t for r, t in self._recent.items() if now - t < RECENT_S}
                self._recent[request_id] = now
        for token in tokens:
            token.set()

    def running(self) -> list[str]:
        with self._lock:
            return list(self._running)

    def sweep_on(self, pipe: Pipeline[str]) -> Callable[[Any], None]:
        """Queue on ``pipe`` a read of the running requests' markers; returns what to call
        with that command's reply (a heartbeat's pipeline carries it)."""
        running = self.running()
        if not running:
            return lambda reply: None
        pipe.mget([keys.cancel(r) for r in running])

        def done(reply: Any) -> None:
            for rid, marker in zip(running, reply or [], strict=False):
                if marker is not None:
                    self.cancel(rid)

        return done

    def _listen(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(keys.cancels())
                backoff = 0.1
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self.cancel(str(message["data"]))
            except (redis.RedisError, OSError) as exc:
                log.warning("cancel listener lost Redis (heartbeats still sweep): %s", exc)
                self._stop.wait(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()
