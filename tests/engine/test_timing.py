"""The engine timing model and how profile files carry it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cato_mq.engine.timing import EngineTiming


def test_step_time_adds_the_prefill_of_admitted_prompts() -> None:
    t = EngineTiming(decode_base_s=0.005, decode_per_seq_s=0.001, prefill_base_s=0.01, prefill_per_token_s=0.0001)
    assert t.step_s(4, 0) == pytest.approx(0.009)
    assert t.step_s(4, 100) == pytest.approx(0.009 + 0.01 + 0.01)


def test_each_token_of_context_beyond_the_measured_one_slows_the_decode_step() -> None:
    t = EngineTiming(decode_base_s=0.005, decode_per_seq_s=0.001, decode_per_context_token_s=1e-6,
                     decode_context_ref=200)
    assert t.decode_s(4, None) == pytest.approx(0.009)  # the profile's own context
    assert t.decode_s(4, 4 * 200) == pytest.approx(0.009)
    assert t.decode_s(4, 4 * 700) == pytest.approx(0.009 + 4 * 500 * 1e-6)
    assert t.decode_s(4, 4 * 100) == pytest.approx(0.009 - 4 * 100 * 1e-6)  # shorter: faster
    assert t.decode_s(4, 0.0) == pytest.approx(0.009 - 800e-6)
    assert EngineTiming(decode_per_context_token_s=1e-4, decode_context_ref=200).decode_s(4, 0.0) == \
        pytest.approx(EngineTiming().decode_s(4) / 2)  # never below half the measured step
    assert t.plan_step(4, [], [], 4 * 700).seconds == pytest.approx(t.decode_s(4, 4 * 700))
    assert EngineTiming().decode_s(4, 10_000) == EngineTiming().decode_s(4)  # context-blind by default


def test_loads_a_profile_under_its_new_and_its_old_name_or_bare(tmp_path: Path) -> None:
    timing = {"decode_base_s": 0.02, "usl_lambda": 80.0}
    for name, data in (("new", {"timing": timing}), ("old", {"sim": timing}), ("bare", timing)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(data))
        assert EngineTiming.load(path) == EngineTiming(decode_base_s=0.02, usl_lambda=80.0)


def test_a_step_schedules_decodes_first_then_started_prompts_then_waiting_ones_within_the_budget() -> None:
    t = EngineTiming(max_num_batched_tokens=100, max_num_seqs=8)
    plan = t.plan_step(decoding=3, started=[40], waiting=[30, 50, 10])
    assert plan.started == (40,)
    assert plan.admitted == (30, 27)  # 3 + 40 + 30 + 27 = 100: the second waiting prompt is chunked
    assert plan.seconds == pytest.approx(t.step_s(3, 97))
    seats = EngineTiming(max_num_batched_tokens=1000, max_num_seqs=5).plan_step(3, [10], [1, 1, 1])
    assert seats.admitted == (1,)  # 3 decoding + 1 started + 1 admitted fill the five sequences


def test_prefill_done_is_what_stepping_the_schedule_gives() -> None:
    t = EngineTiming(max_num_batched_tokens=512, max_num_seqs=16)
    for decoding, ahead, tokens in [(0, 0, 100), (3, 0, 2000), (4, 700, 300), (2, 1018, 492), (0, 0, 0)]:
        # a prompt of `ahead` tokens is under way before ours; step until ours is prefilled
        # (as prefill_done_s assumes, the one ahead does not start decoding meanwhile)
        ahead_left, ours_left, ours_in, elapsed = ahead, tokens, False, 0.0
        while True:
            started = ([ahead_left] if ahead_left else []) + ([ours_left] if ours_in else [])
            plan = t.plan_step(decoding, started, [] if ours_in else [tokens])
            elapsed += plan.seconds
            chunks = list(plan.started)
            if ahead_left:
                ahead_left -= chunks.pop(0)
            if ours_in:
                ours_left -= chunks.pop(0)
            elif plan.admitted:
                ours_in, ours_left = True, tokens - plan.admitted[0]
            if ours_in and ours_left == 0:
                break
        assert t.prefill_done_s(decoding, ahead, tokens) == pytest.approx(elapsed), (decoding, ahead, tokens)


def test_the_budget_must_leave_room_beyond_a_full_batch_of_decodes() -> None:
    with pytest.raises(ValueError, match="max_num_batched_tokens"):
        EngineTiming(max_num_batched_tokens=16, max_num_seqs=16)
