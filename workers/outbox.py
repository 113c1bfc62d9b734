"""The replica's outbox: what it writes to Redis off the hot path, in one pipeline per period.

* **Tokens.** Each node's first chunk is written at once by its own task thread: that
  write is the time to first token the user feels. Later chunks wait in the node's
  ``TokenWriter``; every ``flush_s`` the outbox thread takes all writers' chunks. With B
  requests in flight that is one round trip per period instead of B, which keeps stream
  writes from eating into the engine's decode speed on a small machine. Chunks carry
  their character offset, so a client drops what a redelivered node repeats.
* **Records of intermediate nodes** (``Ledger``): deferred to the same pipeline, so a
  chain hop does not wait for them. The last node of a request is recorded at once by its
  task thread, before its ack, because its ``end`` event is what the client waits for.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import redis

from cato_mq import keys
from cato_mq.ledger import Finished, Ledger

log = logging.getLogger("cato_mq.outbox")


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
            pipe = self._batcher.client.pipeline(transaction=False)
            pipe.xadd(self.key, fields)  # may create the stream: give it its TTL
            pipe.expire(self.key, self._batcher.ttl_s)
            pipe.execute()
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
    def __init__(self, client: redis.Redis[str], flush_s: float, ledger: Ledger, ttl_s: int = 3600) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._ledger = ledger
        self._records: list[tuple[Finished, float]] = []
        self._flush_s = flush_s
        self._writers: set[TokenWriter] = set()
        self._lock = threading.Lock()  # guards the writer set
        self._write_lock = threading.Lock()  # batches reach Redis in the order they were taken
        self._stop = threading.Event()
        self._active = threading.Event()  # set while some writer is registered: idle, we sleep
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def register(self, writer: TokenWriter) -> None:
        with self._lock:
            self._writers.add(writer)
        self._active.set()

    def defer(self, finished: Finished, now: float) -> None:
        """Record an intermediate node with the next flush."""
        with self._lock:
            self._records.append((finished, now))
        self._active.set()

    def finish(self, writer: TokenWriter) -> None:
        with self._write_lock:
            with self._lock:
                self._writers.discard(writer)
            fields = writer.take()
            if fields is not None:
                self.client.xadd(writer.key, fields)

    def flush(self) -> None:
        with self._write_lock:
            with self._lock:
                writers = list(self._writers)
                records, self._records = self._records, []
            batch = [(w.key, f) for w in writers if (f := w.take()) is not None]
            if not batch and not records:
                return
            pipe = self.client.pipeline(transaction=False)
            for key, fields in batch:
                pipe.xadd(key, fields)
            self._ledger.finish_many(records, pipe)

    def _run(self) -> None:
        while self._active.wait() and not self._stop.wait(self._flush_s):
            try:
                self.flush()
            except redis.RedisError:  # a client then sees a gap, never a wrong offset
                log.exception("stream flush failed")
            with self._lock:
                if not self._writers and not self._records:
                    self._active.clear()

    def close(self) -> None:
        self._stop.set()
        self._active.set()
        with contextlib.suppress(redis.RedisError):
            self.flush()
