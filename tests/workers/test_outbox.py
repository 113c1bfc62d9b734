"""Stream batching against real Redis: order, offsets and one round trip for many writers."""

from __future__ import annotations

import redis

from cato_mq.state import keys
from cato_mq.state.ledger import Ledger
from workers.outbox import Outbox, TokenWriter


def chunks(rds: redis.Redis[str], rid: str) -> list[dict[str, str]]:
    return [fields for _, fields in rds.xrange(keys.stream(rid))]


def test_first_chunk_at_once_then_batched_in_order(rds: redis.Redis[str]) -> None:
    batcher = Outbox(rds, flush_s=3600, ledger=Ledger(rds, 100, 10))  # the timer never fires: flushes are explicit
    writer = TokenWriter(batcher, "r1", 1, "w@h")
    writer("def ")
    assert [c["d"] for c in chunks(rds, "r1")] == ["def "]  # the first token is not held back
    assert writer.first_at is not None
    writer("f")
    writer("(x)")
    batcher.flush()
    writer(":")
    writer.close()
    got = chunks(rds, "r1")
    assert [(c["o"], c["d"]) for c in got] == [("0", "def "), ("4", "f(x)"), ("8", ":")]
    assert got[0]["w"] == "w@h" and "w" not in got[1]
    batcher.close()


def test_one_pipeline_serves_every_writer(rds: redis.Redis[str]) -> None:
    batcher = Outbox(rds, flush_s=3600, ledger=Ledger(rds, 100, 10))
    writers = [TokenWriter(batcher, f"r{i}", 0, "w@h") for i in range(8)]
    for w in writers:
        w("a")  # first chunks: written directly
        w("b")
    before = int(rds.info("stats")["total_commands_processed"])
    batcher.flush()
    after = int(rds.info("stats")["total_commands_processed"])
    assert after - before == 8 + 1  # eight XADDs in one pipeline, plus the INFO call
    assert all([c["d"] for c in chunks(rds, f"r{i}")] == ["a", "b"] for i in range(8))
    batcher.close()


def test_deferred_records_ride_the_next_flush(rds: redis.Redis[str]) -> None:
    from cato_mq.state.ledger import Finished

    batcher = Outbox(rds, flush_s=3600, ledger=Ledger(rds, 100, 10))
    batcher.defer(Finished("r9", "default", 0, '{"n": 0}', None, False, False, {"node": 0.1}), now=100.0)
    assert not rds.exists(keys.stream("r9"))  # nothing written before the flush
    batcher.flush()
    assert [(c["t"], c["d"]) for c in chunks(rds, "r9")] == [("node", '{"n": 0}')]
    assert rds.get(keys.node_done("r9", 0)) == "1"
    batcher.close()


def test_records_survive_a_flushed_script_cache(rds: redis.Redis[str]) -> None:
    from cato_mq.state.ledger import Finished

    ledger = Ledger(rds, 100, 10)
    rds.script_flush()  # as after a Redis restart
    ledger.finish(Finished("r8", "default", 0, "{}", "{}", False, False, {}), now=100.0)
    assert [c["t"] for c in chunks(rds, "r8")] == ["node", "end"]


def test_records_alone_wait_longer_and_a_node_that_streams_ends_the_wait(rds: redis.Redis[str]) -> None:
    import time

    from cato_mq.state.ledger import Finished

    batcher = Outbox(rds, flush_s=0.01, ledger=Ledger(rds, 100, 10), record_flush_s=3600)
    batcher.defer(Finished("r8", "default", 0, '{"n": 0}', None, False, False, {"node": 0.1}), now=100.0)
    time.sleep(0.2)  # twenty token periods: a record alone is not flushed in any of them
    assert not rds.exists(keys.stream("r8"))
    writer = TokenWriter(batcher, "r7", 0, "w@h")
    writer("a")  # a node starts streaming: the outbox is back on the token period
    writer("b")
    until = time.monotonic() + 5
    while not (rds.exists(keys.stream("r8")) and len(chunks(rds, "r7")) == 2) and time.monotonic() < until:
        time.sleep(0.005)
    assert [(c["t"], c["d"]) for c in chunks(rds, "r8")] == [("node", '{"n": 0}')]
    assert [c["d"] for c in chunks(rds, "r7")] == ["a", "b"]
    writer.close()
    batcher.close()
