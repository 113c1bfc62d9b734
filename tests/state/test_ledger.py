"""The ledger's one-call bookkeeping, against real Redis."""

import redis

from cato_mq.state import keys
from cato_mq.state.estimates import EstimateStore
from cato_mq.state.ledger import Finished, Ledger


def test_finish_records_everything_in_one_call(rds: redis.Redis) -> None:
    ledger = Ledger(rds, result_ttl_s=100, window_s=10)
    EstimateStore(rds).seed("default", {"llm:fixed": 1.0})
    f = Finished("r1", "default", 1, '{"x": 1}', '{"text": "hi"}', node_missed=True, request_missed=False,
                 observed={"llm:fixed": 2.0, "node": 3.0})
    ledger.finish(f, now=1234.5)
    assert rds.get(keys.node_done("r1", 1)) == "1" and 0 < rds.ttl(keys.node_done("r1", 1)) <= 100
    events = [(e["t"], e["d"]) for _, e in rds.xrange(keys.stream("r1"))]
    assert events == [("node", '{"x": 1}'), ("end", '{"text": "hi"}')]
    est = rds.hgetall(keys.estimates("default"))
    assert float(est["llm:fixed"]) == 1.2  # EWMA from the seed: 1.0 + 0.2 * (2.0 - 1.0)
    assert float(est["node"]) == 3.0  # first observation seeds it
    window = rds.hgetall(keys.window("default", 1230))
    assert window == {"nodes": "1", "node_violations": "1", "requests": "1"}
    assert rds.ttl(keys.window("default", 1230)) > 0


def test_seed_never_overwrites_a_live_estimate(rds: redis.Redis) -> None:
    store = EstimateStore(rds)
    store.seed("default", {"llm:fixed": 1.0})
    store.seed("default", {"llm:fixed": 9.0})
    assert rds.hget(keys.estimates("default"), "llm:fixed") == "1.0"
    assert rds.ttl(keys.estimates("default")) > 0
