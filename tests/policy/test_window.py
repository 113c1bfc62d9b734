"""The sliding violation window both the beat and the simulator count with."""

from __future__ import annotations

import pytest

from cato_mq.policy import window


def test_position_is_the_window_and_the_fraction_into_it() -> None:
    assert window.position(25.0, 10.0) == (2, pytest.approx(0.5))
    assert window.position(30.0, 10.0) == (3, 0.0)
    assert window.position(1.5, 2.0) == (0, 0.75)


def test_sliding_weighs_the_previous_window_by_what_it_still_covers() -> None:
    assert window.sliding(4, 10, 0.0) == 14  # at a boundary: the whole previous window
    assert window.sliding(4, 10, 0.75) == pytest.approx(6.5)
    assert window.sliding(0, 0, 0.3) == 0
