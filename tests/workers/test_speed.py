"""What a replica predicts of its own engine from its profile."""

from __future__ import annotations

import pytest

from cato_mq.engine.timing import EngineTiming
from workers.speed import SpeedModel

P = EngineTiming()


def test_per_request_speed_falls_as_the_batch_grows_and_scales_with_time_scale() -> None:
    m = SpeedModel(P, scale=5.0)
    assert m.per_request(1) == pytest.approx(1 / (P.decode_s(1) * 5))
    assert m.per_request(8) < m.per_request(1)
    assert m.per_request(0) == m.per_request(1)  # nobody on the engine: as if alone


def test_first_token_waits_for_the_step_under_way_then_the_prefill_step() -> None:
    m = SpeedModel(P, scale=2.0)
    assert m.first_token_s(0, 1000) == pytest.approx(P.step_s(0, 1000) * 2)  # idle engine: no step under way
    assert m.first_token_s(3, 1000) == pytest.approx((P.decode_s(3) + P.step_s(3, 1000)) * 2)
    assert m.first_token_s(3, 2000) > m.first_token_s(3, 1000)


def test_prompt_tokens_use_the_profiles_characters_per_token() -> None:
    m = SpeedModel(P.model_copy(update={"chars_per_token": 4.0}))
    assert m.prompt_tokens("x" * 4000) == 1000
    assert m.prompt_tokens("") == 1  # an empty prompt still takes a prefill step


def test_online_reprofiling_tracks_an_engine_slower_than_its_profile() -> None:
    m = SpeedModel(P, scale=1.0)
    profiled = m.per_request(1)
    for _ in range(60):  # the machine now runs twice as slow as when it was profiled
        m.observe(1, 2 * P.decode_s(1))
    assert m.drift == pytest.approx(2.0, rel=0.01)
    assert m.per_request(1) == pytest.approx(profiled / 2, rel=0.01)
    assert m.first_token_s(0, 100) == pytest.approx(2 * P.step_s(0, 100), rel=0.01)


def test_one_freak_node_moves_the_drift_a_little_and_the_drift_is_bounded() -> None:
    m = SpeedModel(P)
    m.observe(1, 100 * P.decode_s(1))  # one node 100x slow (ratio clamped to 4)
    assert m.drift == pytest.approx(0.9 + 0.1 * 4.0)
    for _ in range(200):
        m.observe(1, 100 * P.decode_s(1))
    assert m.drift == pytest.approx(4.0) and m.drift <= 4.0
    before = m.drift
    m.observe(1, 0.0)  # no time measured: nothing learned
    assert m.drift == before
