"""cato+'s gate hands a node it cannot admit back to the queue: a sibling runs it, once.

Real Redis, real sim-engine worker processes. Worker A runs a request that one more request
beside it would make late, so A's gate refuses the next node; the node goes back to the
head of its tier queue while A takes no LLM node until it has room, and worker B, started
once the node is back in Redis, runs it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from cato_mq import CodingTask, submit
from cato_mq import app as cato_app
from cato_mq.client import Handle
from cato_mq.state import keys
from tests.conftest import WorkerFactory

#: a node may run 16 s here (0.8 x the visibility timeout), so the busy worker stays busy
#: while its sibling starts
CATO_PLUS = {"CATO_ROUTING": "cato+", "CATO_VISIBILITY_TIMEOUT_S": "20"}


def _runs(rds: redis.Redis, request_id: str) -> dict[str, int]:
    """How often each node of the request ran (its first token written) and was recorded."""
    counts = {"llm runs": 0, "records": 0, "ends": 0}
    for _, fields in rds.xrange(keys.stream(request_id)):
        if fields.get("t") == "tok" and fields.get("n") == "0" and fields.get("o") == "0":
            counts["llm runs"] += 1
        counts["records"] += fields.get("t") == "node"
        counts["ends"] += fields.get("t") == "end"
    return counts


def _wait_until(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    give_up = time.monotonic() + timeout
    while not check():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)  # polling Redis for an event another process causes


def _first_token(h: Handle) -> dict[str, str]:
    for kind, fields in h.events(30):
        if kind == "tok":
            return fields
    raise AssertionError("request ended without a token")


def test_a_node_one_worker_cannot_admit_runs_once_on_its_sibling(
    workers: WorkerFactory, rds: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 67 tokens/s for one request, 40 each for two
    profile = tmp_path / "steep.json"
    profile.write_text(json.dumps({"decode_base_s": 0.005, "decode_per_seq_s": 0.01}))
    for name, value in CATO_PLUS.items():
        monkeypatch.setenv(name, value)
    cato_app.reset()
    workers("-c", "2", "--profile", str(profile), env=CATO_PLUS, device="0")
    # 600 tokens in 10 s: 60 tokens/s, met alone (9 s); another beside it would make it
    # late for its first 7 s (then it is far enough ahead)
    tight = submit(CodingTask(kind="summarization", prompt="def f(): pass", max_tokens=600,
                              sla={"metric": "e2e", "seconds": 10}))
    assert _first_token(tight)["w"].startswith("default-sim-d0@")

    relaxed = submit(CodingTask(kind="summarization", prompt="def g(): pass", max_tokens=5,
                                sla={"metric": "e2e", "seconds": 60}))
    task_id = keys.node_task_id(relaxed.request_id, 0, "llm")
    lists = keys.queue_lists("default", "safe")
    # worker A took it (its first delivery) and handed it back: it is queued again, held by nobody
    _wait_until("A refused the node", lambda: int(rds.get(keys.attempt(task_id)) or 0) >= 1
                and sum(rds.llen(q) for q in lists) == 1)

    workers("-c", "2", "--profile", str(profile), env=CATO_PLUS, device="1")
    b = relaxed.result(timeout=60)
    a = tight.result(timeout=60)
    node = b.nodes[0]
    assert node.worker.startswith("default-sim-d1@")  # the sibling ran it
    assert node.started_at < a.nodes[0].ended_at  # while A was still busy with the tight request
    assert node.requeues >= 1 and node.attempt == node.requeues + 1
    assert not node.redelivered and b.redeliveries == 0  # a hand-back is no fault
    assert a.met_sla and b.met_sla
    assert _runs(rds, relaxed.request_id) == {"llm runs": 1, "records": 1, "ends": 1}
    assert _runs(rds, tight.request_id) == {"llm runs": 1, "records": 1, "ends": 1}
    assert rds.hlen(keys.UNACKED) == 0  # every delivery, handed back or run, was acked
