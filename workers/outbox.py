"""The replica's outbox: what it writes to Redis off the hot path, in one pipeline per period,
and what it could not write yet.

* **Tokens.** Each node's first chunk is written at once by its own task thread: that
  write is the time to first token the user feels. Later chunks wait in the node's
  ``TokenWriter``; every ``flush_s`` the outbox thread takes all writers' chunks. With B
  requests in flight that is one round trip per period instead of B, which keeps stream
  writes from eating into the engine's decode speed on a small machine. Chunks carry
  their character offset, so a client drops what a redelivered node repeats.
* **Records of intermediate nodes** (``Ledger``): deferred to the same pipeline, so a
  chain hop does not wait for them. While they are all there is to write, the outbox
  waits ``record_flush_s`` rather than ``flush_s``: a flush takes the GIL from the task
  and consumer threads, and one every 10 ms landed on the chain's next hop often enough to
  show in its median (``cato-mq bench overhead``: link p50 1.08x bare Celery, 0.96-0.99x
  with the longer wait). A node that starts streaming, or an error, cuts that wait short.
  The last node of a request is recorded at once by its task thread, before its ack,
  because its ``end`` event is what the client waits for.
* **Retries.** A write that fails (Redis restarting, a connection lost, a full Redis) is
  kept and retried with the next flushes, backing off to ``MAX_BACKOFF_S``, in order:
  a node's chunks before its later chunks and before its record or ``err``. Records and
  errors are fenced (``state.ledger``), so one retried after the node was redelivered is
  refused rather than written twice. What still fails after ``give_up_s`` is dropped
  with an error in the log.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

import redis

from cato_mq.state import keys
from cato_mq.state.ledger import Failed, Finished, Ledger

log = logging.getLogger("cato_mq.outbox")
#: Longest wait between two flushes while Redis refuses them.
MAX_BACKOFF_S = 1.0


class TokenWriter:
    """Collects one node's deltas; the batcher takes them as one chunk per period."""

    def __init__(self, batcher: Outbox, request_id: str, index: int, worker: str) -> None:
        self._batcher = batcher
        self.key = keys.stream(request_id)
        self._node = str(index)
        self._worker = worker
        self._lock = threading.Lock()
        self._buffer: list[str] = []
        self._offset = 0
        self.first_at: float | None = None
        self.deltas = 0

    def __call__(self, delta: str) -> None:
        with self._lock:
            self._buffer.append(delta)
            self.deltas += 1
        if self.first_at is None:
            fields = self.take()
            assert fields is not None
            fields["w"] = self._worker  # who serves the node: operators and tests look here
            try:
                pipe = self._batcher.client.pipeline(transaction=False)
                pipe.xadd(self.key, fields)  # may create the stream: give it its TTL
                pipe.expire(self.key, self._batcher.ttl_s)
                pipe.execute()
            except redis.RedisError as exc:  # the node goes on; the outbox writes it later
                log.warning("first chunk of %s not written yet: %s", self.key, exc)
                self._batcher.later(self.key, fields)
            self.first_at = time.time()
            self._batcher.register(self)

    def take(self) -> dict[str, str] | None:
        """The chunk accumulated since the last take, or None."""
        with self._lock:
            if not self._buffer:
                return None
            data = "".join(self._buffer)
            self._buffer.clear()
            fields = {"t": "tok", "n": self._node, "o": str(self._offset), "d": data}
            self._offset += len(data)
            return fields

    def close(self) -> None:
        """Write what is left, after any batch already holding this writer's earlier chunks."""
        self._batcher.finish(self)


class Outbox:
    def __init__(
        self, client: redis.Redis[str], flush_s: float, ledger: Ledger, ttl_s: int = 3600, give_up_s: float = 600.0,
        record_flush_s: float | None = None,
    ) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._ledger = ledger
        self._give_up_s = give_up_s
        self._chunks: list[tuple[float, str, dict[str, str]]] = []  # waiting for a retry
        self._records: list[tuple[Finished, float]] = []
        self._fails: list[tuple[Failed, float]] = []
        self._flush_s = flush_s
        self._record_flush_s = flush_s if record_flush_s is None else max(flush_s, record_flush_s)
        self._hurry = threading.Event()  # tokens or an error wait: end a records-only wait now
        self._failing = 0  # flushes failed in a row: the backoff
        self._writers: set[TokenWriter] = set()
        self._lock = threading.Lock()  # guards the writer set and the waiting writes
        self._write_lock = threading.Lock()  # batches reach Redis in the order they were taken
        self._stop = threading.Event()
        self._active = threading.Event()  # set while some writer is registered: idle, we sleep
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def register(self, writer: TokenWriter) -> None:
        with self._lock:
            self._writers.add(writer)
        self._active.set()
        self._hurry.set()

    def later(self, key: str, fields: dict[str, str]) -> None:
        """A chunk whose write failed: written by the next flushes, before newer ones."""
        with self._lock:
            self._chunks.append((time.monotonic(), key, fields))
        self._active.set()

    def _waiting_for(self, key: str) -> bool:
        with self._lock:
            return any(k == key for _, k, _ in self._chunks)

    def defer(self, finished: Finished, now: float) -> None:
        """Record an intermediate node with the next flush."""
        with self._lock:
            self._records.append((finished, now))
        self._active.set()

    def record(self, finished: Finished, now: float) -> None:
        """Record the last node now, after its stream's chunks; if Redis does not answer,
        with the next flushes."""
        if not self._now(finished.request_id, "record", lambda: self._ledger.finish(finished, now)):
            self.defer(finished, now)

    def fail(self, failed: Failed, now: float) -> None:
        """Write a request's ``err`` now, after its stream's chunks; else with the next flushes."""
        if not self._now(failed.request_id, "error", lambda: self._ledger.fail(failed, now)):
            with self._lock:
                self._fails.append((failed, now))
            self._active.set()
            self._hurry.set()

    def _now(self, request_id: str, what: str, write: Callable[[], object]) -> bool:
        """Write at once unless earlier writes to the request's stream still wait."""
        if self._waiting_for(keys.stream(request_id)):
            return False
        try:
            write()
            return True
        except redis.RedisError as exc:
            log.warning("%s of %s not written yet: %s", what, request_id, exc)
            return False

    def finish(self, writer: TokenWriter) -> None:
        with self._write_lock:
            with self._lock:
                self._writers.discard(writer)
            fields = writer.take()
            if fields is None:
                return
            if not self._waiting_for(writer.key):
                try:
                    self.client.xadd(writer.key, fields)
                    return
                except redis.RedisError as exc:
                    log.warning("last chunk of %s not written yet: %s", writer.key, exc)
            self.later(writer.key, fields)

    def flush(self) -> None:
        with self._write_lock:
            with self._lock:
                writers = list(self._writers)
                chunks, self._chunks = self._chunks, []
                records, self._records = self._records, []
                fails, self._fails = self._fails, []
            retried = len(chunks)
            now = time.monotonic()
            chunks += [(now, w.key, f) for w in writers if (f := w.take()) is not None]
            if not chunks and not records and not fails:
                return
            pipe = self.client.pipeline(transaction=False)
            at = []  # each chunk's reply index
            for i, (_, key, fields) in enumerate(chunks):
                at.append(len(pipe.command_stack))
                pipe.xadd(key, fields)
                if i < retried:  # perhaps the stream's first write: it needs its TTL
                    pipe.expire(key, self.ttl_s)
            first = len(pipe.command_stack)
            try:
                replies = self._ledger.write(records, fails, pipe)
            except redis.RedisError:
                self._keep(chunks, records, fails)
                raise
            outcomes = replies[first:]
            self._keep([c for c, i in zip(chunks, at, strict=True) if isinstance(replies[i], Exception)],
                       [x for x, r in zip(records, outcomes, strict=False) if isinstance(r, Exception)],
                       [x for x, r in zip(fails, outcomes[len(records):], strict=True) if isinstance(r, Exception)])

    def _keep(
        self, chunks: list[tuple[float, str, dict[str, str]]], records: list[tuple[Finished, float]],
        fails: list[tuple[Failed, float]],
    ) -> None:
        """Put writes that failed back in front of the waiting ones, dropping the too old."""
        now_mono, now = time.monotonic(), time.time()
        old = [c for c in chunks if now_mono - c[0] > self._give_up_s]
        old_outcomes = [x for x in [*records, *fails] if now - x[1] > self._give_up_s]
        if old or old_outcomes:
            log.error("gave up writing %d chunks and %d outcomes after %.0f s", len(old), len(old_outcomes),
                      self._give_up_s)
        with self._lock:
            self._chunks = [c for c in chunks if c not in old] + self._chunks
            self._records = [x for x in records if x not in old_outcomes] + self._records
            self._fails = [x for x in fails if x not in old_outcomes] + self._fails
        if chunks or records or fails:
            self._active.set()

    def _pending(self) -> bool:
        with self._lock:
            return bool(self._writers or self._records or self._fails or self._chunks)

    def _run(self) -> None:
        while self._active.wait():
            period = self._period()
            # records only: a long wait, which a node that starts streaming, or an error, ends
            # (then the usual period from there: its later chunks come by then). Backing off
            # (failing) or streaming: the period as it is
            if not self._failing and period > self._flush_s and self._hurry.wait(period):
                self._stop.wait(self._flush_s)
            else:
                self._stop.wait(period)
            self._hurry.clear()
            if self._stop.is_set():
                return
            try:
                self.flush()
                self._failing = 0
            except redis.RedisError as exc:  # kept: retried with the next flushes
                self._failing += 1
                log.warning("stream flush failed (%d in a row): %s", self._failing, exc)
            with self._lock:
                if not (self._writers or self._records or self._fails or self._chunks):
                    self._active.clear()

    def _period(self) -> float:
        if self._failing:
            return min(MAX_BACKOFF_S, self._flush_s * float(2**self._failing) + 0.05)
        with self._lock:
            records_only = not (self._writers or self._chunks or self._fails)
        return self._record_flush_s if records_only else self._flush_s

    def close(self, wait_s: float = 5.0) -> None:
        """Stop the thread; try the waiting writes for up to ``wait_s`` more."""
        self._stop.set()
        self._active.set()
        self._hurry.set()
        until = time.monotonic() + wait_s
        while True:
            with contextlib.suppress(redis.RedisError):
                self.flush()
            if not self._pending() or time.monotonic() > until:
                return
            time.sleep(0.2)
