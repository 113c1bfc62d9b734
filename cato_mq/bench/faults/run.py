"""One fault row: its own Redis and two workers, the load, the fault, and the count of what
the client got for each request."""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import redis

from cato_mq import app as cato_app
from cato_mq.bench import corpus, workload
from cato_mq.bench.faults.fleet import ENV, Fleet
from cato_mq.bench.faults.rows import Fault, Params
from cato_mq.bench.faults.server import RedisServer
from cato_mq.bench.runtime import task_of
from cato_mq.bench.workload import Request
from cato_mq.client import Handle
from cato_mq.fleet import launch
from cato_mq.schemas import Kind, Result
from cato_mq.state import keys

#: Output budget of the memory row's requests: their size is the prompt, not the answer.
BIG_MAX_TOKENS = 16
#: Requests submitted within this long are followed by one thread.
FOLLOW_BATCH_S = 1.0
_IDS = re.compile(r"[0-9a-f]{32}")
_NUMBERS = re.compile(r"\b\d+\b")


@dataclass
class Row:
    fault: str
    label: str
    submitted: int = 0
    completed: int = 0
    failed: int = 0  #: ended with a reason the client received (``err``, or ``submit`` raised)
    lost: int = 0  #: neither a result nor a reason ``wait_s`` after the load
    worker_exits: int = 0  #: workers that exited without the row killing them
    peak_mb: float = 0.0
    dead_letters: int = 0
    redeliveries: int = 0  #: node deliveries beyond the first, over the completed requests
    seconds: float = 0.0
    redis_version: str = ""
    reasons: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def requests(fault: Fault, p: Params, seed: int = 13) -> list[Request]:
    corp = corpus.load()
    if fault.load == "burst":
        mix = workload.paper_mix(corp, 100.0, 2 * p.burst / 100.0, seed)[: p.burst]
        return [replace(r, at=0.0) for r in mix]
    if fault.load == "big":
        text, i = "", 0
        while len(text) < p.big_chars:
            text += corp.summarization[i % len(corp.summarization)].prompt + "\n\n"
            i += 1
        prompt = text[: p.big_chars]
        return [Request(0.0, Kind.summarization, "e2e", 15.0, prompt, corpus.tokens(prompt), BIG_MAX_TOKENS)
                for _ in range(p.big)]
    return workload.paper_mix(corp, p.rate, p.duration_s, seed)


def reason_key(text: str) -> str:
    return _NUMBERS.sub("<n>", _IDS.sub("<id>", text))[:100]


def run_row(fault: Fault, p: Params, logs: Path) -> Row:
    began = time.monotonic()
    reqs = requests(fault, p)
    server = RedisServer(fault.aof, p.maxmemory if fault.maxmemory else None, p.redis_server).start()
    fleet = Fleet(server, logs / fault.name, p.concurrency)
    fleet.logs.mkdir(parents=True, exist_ok=True)
    saved = dict(os.environ)
    row = Row(fault.name, fault.label.format(**p.__dict__), redis_version=server.version())
    try:
        os.environ.update(ENV, CATO_REDIS_URL=server.url)
        if fault.bounded:  # the submitting process bounds the backlog; workers never do
            os.environ["CATO_MAX_BACKLOG"] = str(p.backlog)
        cato_app.reset()
        fleet.start_worker(wait=False)
        fleet.start_worker({"CATO_FAULT_AFTER_POP": "stop"} if fault.hooked else None, wait=False)
        launch.wait_replicas(redis.Redis.from_url(server.url, decode_responses=True), "default", 2, procs=fleet.workers)
        _drive(fault, p, fleet, reqs, row)
        row.dead_letters = int(redis.Redis.from_url(server.url).xlen(keys.dead()))
        row.worker_exits = len(fleet.exits())
    finally:
        fleet.stop()
        os.environ.clear()
        os.environ.update(saved)
        cato_app.reset()
    row.peak_mb = server.peak_bytes / 2**20
    row.seconds = time.monotonic() - began
    return row


def _drive(fault: Fault, p: Params, fleet: Fleet, reqs: list[Request], row: Row) -> None:
    from cato_mq.client import submit

    tasks = [task_of(r) for r in reqs]
    span = max((r.at for r in reqs), default=0.0)
    t0 = time.time() + 0.5
    deadline = t0 + span + p.wait_s
    injector = _injector(fault, p, fleet, row, t0 + fault.at * span)
    followers = _Followers(deadline)
    for r, task in zip(reqs, tasks, strict=True):
        wait = t0 + r.at - time.time()
        if wait > 0:
            time.sleep(wait)  # open loop: the arrival schedule
        row.submitted += 1
        try:
            followers.add(submit(task, arrived_at=min(time.time(), t0 + r.at)))
        except Exception as exc:  # the client was told: a failure with a reason
            followers.failed(f"submit: {type(exc).__name__}: {exc}")
    followers.close()
    if injector is not None:
        injector.join()
    row.completed, row.redeliveries = len(followers.done), sum(followers.done.values())
    row.failed = sum(followers.reasons.values())
    row.lost = row.submitted - row.completed - row.failed
    row.reasons = dict(followers.reasons.most_common())


def _injector(fault: Fault, p: Params, fleet: Fleet, row: Row, at: float) -> threading.Thread | None:
    if fault.inject is None:
        return None
    inject = fault.inject

    def run_fault() -> None:
        time.sleep(max(0.0, at - time.time()))
        try:
            inject(fleet, p)
        except Exception as exc:  # reported in the row, never silently
            row.notes.append(f"fault injection failed: {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=run_fault, name=f"fault-{fault.name}")
    thread.start()
    return thread


class _Followers:
    """Follows requests as a client does, while they run: a thread per batch of
    ``FOLLOW_BATCH_S`` of submissions, so a result is seen when it is written (a Redis
    that restarts without its data later wipes it, as it would for the user)."""

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline
        self._batch: list[Handle] = []
        self._batch_at = time.monotonic()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.done: dict[str, int] = {}  #: request -> redeliveries
        self.reasons: Counter[str] = Counter()

    def add(self, h: Handle) -> None:
        self._batch.append(h)
        if time.monotonic() - self._batch_at >= FOLLOW_BATCH_S:
            self._flush()

    def failed(self, reason: str) -> None:
        with self._lock:
            self.reasons[reason_key(reason)] += 1

    def _flush(self) -> None:
        batch, self._batch, self._batch_at = self._batch, [], time.monotonic()
        if batch:
            thread = threading.Thread(target=self._follow, args=(batch,), name="follow")
            thread.start()
            self._threads.append(thread)

    def _follow(self, handles: list[Handle]) -> None:
        from cato_mq.client import follow

        try:
            for h, kind, fields in follow(handles, timeout=max(1.0, self._deadline - time.time())):
                if kind == "end":
                    redelivered = Result.model_validate_json(fields["d"]).redeliveries
                    with self._lock:
                        self.done[h.request_id] = redelivered
                elif kind == "err":
                    self.failed(fields["d"])
        except TimeoutError:
            pass  # what has not ended by the deadline is lost

    def close(self) -> None:
        self._flush()
        for thread in self._threads:
            thread.join()
