"""The scaling policy (Algorithm 2) driven through scripted observation sequences. Pure."""

from __future__ import annotations

from dataclasses import replace

from cato_mq.policy.provisioner_config import ProvisionerConfig
from cato_mq.policy.provisioning import Observations, PoolObs, State, decide

CFG = ProvisionerConfig(
    default_min=1, default_max=6, up_violations=3, up_ratio=0.05, violations_per_replica=5, max_step=2,
    calm_s=30, down_cooldown_s=30, down_utilization=0.3,
)
#: Measured capacity in the tests below: 4 slots x 2 s window / 1 s nodes = 8 nodes per window.
WINDOW_S = 2.0


def run(script: list[tuple[float, dict[str, PoolObs]]], free: int = 10,
        cfg: ProvisionerConfig = CFG, window_s: float = 10.0) -> list[dict[str, int]]:
    state: State = {}
    out = []
    for now, pools in script:
        desired, state = decide(Observations(now, pools, free, window_s), state, cfg)
        out.append(desired)
    return out


def ready(n: int, **kw: float) -> PoolObs:
    base = PoolObs(ready=n, slots=4 * n, inflight=4 * n, nodes=40)
    return replace(base, **kw)  # type: ignore[arg-type]


def test_violations_over_threshold_add_replicas_in_proportion() -> None:
    (d,) = run([(100.0, {"p": ready(1, violations=10)})])
    assert d == {"p": 3}  # ceil(10 / 5) = 2 more
    (d,) = run([(100.0, {"p": ready(1, violations=50)})])
    assert d == {"p": 3}  # proportion capped by max_step


def test_below_threshold_or_ratio_or_with_idle_replicas_nothing_happens() -> None:
    assert run([(100.0, {"p": ready(1, violations=2)})]) == [{"p": 1}]  # noise
    assert run([(100.0, {"p": ready(1, violations=4, nodes=1000)})]) == [{"p": 1}]  # 0.4 % of nodes
    assert run([(100.0, {"p": ready(3, violations=3, idle=3)})]) == [{"p": 3}]  # idle replicas exist


def test_starting_replicas_count_as_capacity_on_the_way() -> None:
    # violations keep coming during a cold start: no pile-up of further orders
    seq = [
        (100.0, {"p": ready(1, violations=10)}),
        (101.0, {"p": ready(1, violations=10, starting=2)}),
        (102.0, {"p": ready(1, violations=9, starting=2)}),
        (103.0, {"p": ready(1, violations=13, starting=2)}),  # worse: one more
    ]
    assert run(seq) == [{"p": 3}, {"p": 3}, {"p": 3}, {"p": 4}]


def measured(n: int, **kw: float) -> PoolObs:
    """``n`` busy ready replicas of 4 slots with 1 s nodes: 8 nodes per replica per 2 s window."""
    return replace(ready(n, node_s=1.0, nodes=8 * n), **kw)  # type: ignore[arg-type]


def test_step_is_sized_from_the_measured_capacity() -> None:
    # 20 at-risk nodes, a replica serves 8 per window: 3 more, in one tick
    cfg = CFG.model_copy(update=dict(max_step=4))
    assert run([(0.0, {"p": measured(1, violations=20)})], cfg=cfg, window_s=WINDOW_S) == [{"p": 4}]
    # slower nodes, fewer served per replica: more replicas for the same violations
    assert run([(0.0, {"p": measured(1, violations=12)})], cfg=cfg, window_s=WINDOW_S) == [{"p": 3}]
    assert run([(0.0, {"p": measured(1, violations=12, node_s=2.0)})], cfg=cfg, window_s=WINDOW_S) == [{"p": 4}]
    # a longer window gives a replica more time for them: one is enough
    assert run([(0.0, {"p": measured(1, violations=20)})], cfg=cfg, window_s=10.0) == [{"p": 2}]


def test_the_queue_behind_the_at_risk_nodes_counts_once_the_pool_is_short() -> None:
    # 4 at risk, but 20 queued behind them: sized for 20
    cfg = CFG.model_copy(update=dict(max_step=4))
    assert run([(0.0, {"p": measured(1, violations=4, queued=20)})], cfg=cfg, window_s=WINDOW_S) == [{"p": 4}]
    # a standing queue without violations is not a reason (Algorithm 2 acts on violations)
    seq = [(0.0, {"p": measured(1, queued=20)}), (0.5, {"p": measured(1, queued=20)})]
    assert run(seq, cfg=cfg, window_s=WINDOW_S) == [{"p": 1}, {"p": 1}]


def test_a_growing_queue_is_answered_before_it_violates() -> None:
    # +4 nodes in 0.5 s, 2 s cold start: 4 + 16 = 20 queued by the time a replica serves,
    # 5 s of draining through 4 slots, more than the 2 s window: predicted violations
    cfg = CFG.model_copy(update=dict(max_step=4))
    saturated = measured(1, load_s=2.0)
    seq = [(0.0, {"p": saturated}), (0.5, {"p": replace(saturated, queued=4)})]
    assert run(seq, cfg=cfg, window_s=WINDOW_S) == [{"p": 1}, {"p": 4}]  # ceil(20 / 8) = 3 more
    # the same growth with a fast start (0.2 s): 4.8 queued drain in 1.2 s, nothing yet
    quick = replace(saturated, load_s=0.2)
    seq = [(0.0, {"p": quick}), (0.5, {"p": replace(quick, queued=4)})]
    assert run(seq, cfg=cfg, window_s=WINDOW_S) == [{"p": 1}, {"p": 1}]
    # idle replicas mean the queue is not for lack of capacity
    seq = [(0.0, {"p": saturated}), (0.5, {"p": replace(saturated, queued=4, idle=1)})]
    assert run(seq, cfg=cfg, window_s=WINDOW_S) == [{"p": 1}, {"p": 1}]


def test_a_burst_is_answered_within_a_tick_with_enough_replicas_in_one_step() -> None:
    cfg = CFG.model_copy(update=dict(max_step=4, default_max=8))
    calm = measured(1, inflight=1, nodes=2)
    seq = [(t / 2, {"p": calm}) for t in range(6)] + [
        (3.0, {"p": replace(calm, inflight=4, queued=5)}),  # the queue starts, nothing at risk yet
        (3.5, {"p": replace(calm, inflight=4, queued=14, violations=9)}),  # at risk: act now
        (4.0, {"p": replace(calm, inflight=4, queued=15, violations=12, starting=2)}),
        (4.5, {"p": replace(calm, inflight=4, queued=16, violations=14, starting=2)}),  # still covered
    ]
    assert [d["p"] for d in run(seq, cfg=cfg, window_s=WINDOW_S)] == [1] * 7 + [3, 3, 3]


def test_no_pile_up_while_capacity_on_the_way_covers_the_violations() -> None:
    # 2 starting replicas cover 16 violations per window; only the excess orders more
    seq = [(t, {"p": measured(1, violations=v, starting=2)}) for t, v in
           [(0.0, 10), (0.5, 16), (1.0, 16), (1.5, 17), (2.0, 25)]]
    assert [d["p"] for d in run(seq, window_s=WINDOW_S)] == [3, 3, 3, 4, 5]
    # the queue grows during the cold start, as expected while the 2 do not serve yet:
    # its growth is not projected again, only what exceeds their capacity counts
    growing = measured(1, load_s=2.0, starting=2)
    seq = [(t, {"p": replace(growing, queued=q, violations=q)}) for t, q in [(0.0, 4), (0.5, 8), (1.0, 12), (1.5, 20)]]
    assert [d["p"] for d in run(seq, window_s=WINDOW_S)] == [3, 3, 3, 4]


def test_replicas_that_just_became_ready_count_as_capacity_on_the_way() -> None:
    # the window's violations predate the 2 fresh replicas: they cover 16 of the 20
    (d,) = run([(0.0, {"p": measured(3, violations=20, fresh=2)})], window_s=WINDOW_S)
    assert d == {"p": 4}
    (d,) = run([(0.0, {"p": measured(3, violations=12, fresh=2)})], window_s=WINDOW_S)
    assert d == {"p": 3}
    # a window later they are part of the counts
    (d,) = run([(0.0, {"p": measured(3, violations=20)})], window_s=WINDOW_S)
    assert d == {"p": 5}  # ceil(20 / 8) = 3, max_step 2


def test_empty_pool_with_queued_work_gets_a_replica() -> None:
    cfg = CFG.model_copy(update=dict(default_min=0))
    assert run([(1.0, {"p": PoolObs(queued=3)})], cfg=cfg) == [{"p": 1}]
    assert run([(1.0, {"p": PoolObs()})], cfg=cfg) == [{"p": 0}]


def test_retire_one_at_a_time_after_a_calm_run_down_to_the_minimum() -> None:
    calm = ready(3, inflight=0, nodes=5)
    desired = run([(float(t), {"p": replace(calm, ready=n)}) for t, n in
                   [(0, 3), (29, 3), (30, 3), (31, 2), (59, 2), (60, 2), (90, 1), (200, 1)]])
    assert [d["p"] for d in desired] == [3, 3, 2, 2, 2, 1, 1, 1]


def test_a_violation_or_busy_replicas_break_the_calm_run() -> None:
    calm = ready(3, inflight=0)
    seq = [(0.0, calm), (20.0, replace(calm, violations=1)), (31.0, calm), (50.0, calm),
           (55.0, replace(calm, inflight=10)), (70.0, calm), (100.0, calm)]
    assert [d["p"] for d in run([(t, {"p": o}) for t, o in seq])] == [3, 3, 3, 3, 3, 3, 2]


def test_no_retire_while_a_replica_starts_or_drains() -> None:
    calm = ready(3, inflight=0)
    seq = [(0.0, replace(calm, draining=1)), (40.0, replace(calm, draining=1)), (41.0, replace(calm, starting=1))]
    assert [d["p"] for d in run([(t, {"p": o}) for t, o in seq])] == [3, 3, 4]


def test_scale_up_resets_calm_and_cooldown_blocks_quick_retire() -> None:
    calm = ready(2, inflight=0)
    seq = [(0.0, calm), (29.0, ready(2, violations=10)), (31.0, replace(calm, ready=4)),
           (60.0, replace(calm, ready=4)), (61.0, replace(calm, ready=4))]
    assert [d["p"] for d in run([(t, {"p": o}) for t, o in seq])] == [2, 4, 4, 4, 3]


def test_minimum_and_maximum_per_pool() -> None:
    cfg = CFG.model_copy(update=dict(min_replicas={"a": 2}, max_replicas={"b": 2}))
    d = run([(0.0, {"a": PoolObs(), "b": ready(1, violations=40), "c": ready(8)})], cfg=cfg)
    assert d == [{"a": 2, "b": 2, "c": 6}]


def test_growth_is_limited_to_free_devices() -> None:
    pools = {"a": ready(1, violations=10), "b": ready(1, violations=30)}
    assert run([(0.0, pools)], free=1) == [{"a": 1, "b": 2}]  # the more violated pool first


def test_without_free_devices_the_lowest_score_pool_gives_up_one_replica() -> None:
    cfg = CFG.model_copy(update=dict(sensitivity={"chat": 1.0, "batch": 0.0}))
    pools = {
        "hot": ready(1, violations=20),
        "chat": ready(2, inflight=2, load_s=60.0, node_s=0.5),
        "batch": ready(2, inflight=2, load_s=2.0, node_s=0.5),
    }
    (d,) = run([(0.0, pools)], free=0, cfg=cfg)
    assert d == {"hot": 1, "chat": 2, "batch": 1}
    # a pool at its minimum is never a donor
    (d,) = run([(0.0, {**pools, "batch": ready(1)})], free=0, cfg=cfg)
    assert d == {"hot": 1, "chat": 1, "batch": 1}


def test_a_draining_donor_is_capacity_on_the_way_no_second_eviction() -> None:
    pools = {"hot": ready(1, violations=20), "chat": ready(2, inflight=2), "batch": ready(1, draining=1)}
    (d,) = run([(0.0, pools)], free=0, cfg=CFG.model_copy(update=dict(violations_per_replica=100)))
    assert d == {"hot": 2, "chat": 2, "batch": 1}  # hot waits for batch's device


def test_a_burst_then_calm_grows_once_and_shrinks_back_one_at_a_time() -> None:
    cfg = CFG.model_copy(update=dict(max_step=4, calm_s=6, down_cooldown_s=6))
    busy, calm = measured(1, inflight=4), measured(1, inflight=0, nodes=2)
    seq: list[tuple[float, PoolObs]] = [
        (0.0, replace(busy, queued=14, violations=9)),  # burst: 2 more at once
        (0.5, replace(busy, queued=16, violations=12, starting=2)),  # covered: no pile-up
        (3.0, replace(busy, ready=3, slots=12, inflight=12, queued=6, violations=8, fresh=2)),
        (5.0, replace(busy, ready=3, slots=12, inflight=9, queued=0, violations=2)),  # caught up
        (7.0, replace(calm, ready=3, slots=12, inflight=1)),  # calm from here
        (12.0, replace(calm, ready=3, slots=12, inflight=1)),
        (13.0, replace(calm, ready=3, slots=12, inflight=1)),  # 6 s of calm: one retires
        (14.0, replace(calm, ready=2, slots=8, inflight=1)),
        (19.0, replace(calm, ready=2, slots=8, inflight=1)),  # cooldown since 13: one more
        (30.0, replace(calm, inflight=1)),  # at the minimum
    ]
    desired = [d["p"] for d in run([(t, {"p": o}) for t, o in seq], cfg=cfg, window_s=WINDOW_S)]
    assert desired == [3, 3, 3, 3, 3, 3, 2, 2, 1, 1]
