"""The USL fit (cato_mq.engine.usl): exact on clean data, sane on noisy and degenerate data."""

from __future__ import annotations

import math
import random

import pytest

from cato_mq.engine.usl import USL, fit, linear_fit, r_squared

LEVELS = (1, 2, 4, 8, 16)


def _points(lam: float, sigma: float, kappa: float, noise: float = 0.0, seed: int = 0) -> list[tuple[float, float]]:
    truth = USL(lam, sigma, kappa, 1.0)
    rng = random.Random(seed)
    return [(n, truth.throughput(n) * (1 + rng.uniform(-noise, noise))) for n in LEVELS]


def test_recovers_the_coefficients_of_clean_data() -> None:
    got = fit(_points(500.0, 0.05, 0.002))
    assert got.lam == pytest.approx(500.0)
    assert got.sigma == pytest.approx(0.05, abs=1e-9)
    assert got.kappa == pytest.approx(0.002, abs=1e-9)
    assert got.r2 == pytest.approx(1.0)
    assert got.peak_n == pytest.approx(math.sqrt(0.95 / 0.002))


def test_noisy_data_still_fits_well() -> None:
    got = fit(_points(300.0, 0.1, 0.001, noise=0.03, seed=4))
    assert got.sigma == pytest.approx(0.1, abs=0.05)
    assert got.r2 > 0.95


def test_linear_scaling_gives_zero_coefficients() -> None:
    got = fit([(n, 100.0 * n) for n in LEVELS])
    assert (got.sigma, got.kappa) == pytest.approx((0.0, 0.0), abs=1e-12)
    assert got.peak_n == math.inf
    assert got.per_request(16) == pytest.approx(100.0)


def test_superlinear_data_is_clipped_to_non_negative_coefficients() -> None:
    # better than linear (a measurement artefact): no negative contention is reported
    got = fit([(1, 100.0), (2, 210.0), (4, 450.0)])
    assert got.sigma >= 0 and got.kappa >= 0


def test_declining_throughput_is_coherency() -> None:
    got = fit(_points(200.0, 0.0, 0.02))
    assert got.kappa == pytest.approx(0.02, rel=1e-6)
    assert got.throughput(16) < got.throughput(8)


def test_step_time_matches_the_sim_engines_form() -> None:
    u = USL(250.0, 0.1, 0.003, 1.0)
    n = 6
    assert u.step_s(n) == pytest.approx((1 + 0.1 * (n - 1) + 0.003 * n * (n - 1)) / 250.0)


def test_only_the_single_request_point() -> None:
    got = fit([(1, 80.0), (1, 120.0)])
    assert got.lam == pytest.approx(100.0)
    assert (got.sigma, got.kappa) == (0.0, 0.0)


@pytest.mark.parametrize("points", [[], [(2, 10.0)], [(1, 10.0), (0, 5.0)], [(1, -1.0)]])
def test_bad_input_is_refused(points: list[tuple[float, float]]) -> None:
    with pytest.raises(ValueError):
        fit(points)


def test_linear_fit_and_r_squared() -> None:
    a, b, r2 = linear_fit([(0, 1.0), (10, 2.0), (20, 3.0)])
    assert (a, b, r2) == pytest.approx((1.0, 0.1, 1.0))
    assert r_squared([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        linear_fit([(1, 1.0), (1, 2.0)])
