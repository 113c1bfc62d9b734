"""Pure pieces: which bucket an observation lands in, and the cumulative buckets."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cato_mq.state import keys, outcomes

BOUNDS = (0.5, 1.0, 2.5)


@pytest.mark.parametrize(("value", "bucket"), [
    (0.0, "0.5"), (0.5, "0.5"), (0.5000001, "1.0"), (1.0, "1.0"), (2.4, "2.5"), (2.5, "2.5"), (9.0, "+Inf"),
])
def test_a_value_lands_in_the_smallest_bound_at_or_above_it(value: float, bucket: str) -> None:
    assert outcomes.bucket(value, BOUNDS) == bucket


def test_cumulative_buckets_add_up_and_end_at_the_count() -> None:
    counts = {"0.5": 2, "2.5": 1, "+Inf": 4}
    assert outcomes.cumulative(counts, BOUNDS) == [("0.5", 2), ("1.0", 2), ("2.5", 3), ("+Inf", 7)]


@given(st.lists(st.floats(min_value=0, max_value=10_000, allow_nan=False), max_size=50))
def test_placing_then_summing_is_prometheus_le(values: list[float]) -> None:
    counts: dict[str, int] = {}
    for v in values:
        b = outcomes.bucket(v, outcomes.TTFT_BUCKETS)
        counts[b] = counts.get(b, 0) + 1
    for le, total in outcomes.cumulative(counts, outcomes.TTFT_BUCKETS):
        assert total == sum(v <= float(le) for v in values)


def test_buckets_are_vllms_shape_and_sorted() -> None:
    for bounds in (outcomes.TTFT_BUCKETS, outcomes.E2E_BUCKETS):
        assert list(bounds) == sorted(set(bounds))
    assert outcomes.TTFT_BUCKETS[0] == 0.001 and outcomes.E2E_BUCKETS[-1] == 7680.0


def test_an_unknown_counter_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown counter 'request'"):
        keys.counter("request")


def test_a_bad_port_exits_2_with_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "cato_mq.cli", "metrics", "--port", "70000"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "cato-mq metrics: --port must be 0..65535, not 70000"
