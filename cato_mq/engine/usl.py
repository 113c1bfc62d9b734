"""The Universal Scalability Law, fitted to an engine's throughput at N concurrent requests.

    X(N) = lambda N / (1 + sigma (N - 1) + kappa N (N - 1))

``lambda`` is the throughput of one request alone (tokens/s), ``sigma`` the contention
(the serial share of a step) and ``kappa`` the coherency cost that eventually makes more
requests slower in total. SABER found it fits LLM engines' per-request decode speed under
continuous batching better than linear or Amdahl models. Pure; the profiler feeds it.

The fit takes ``lambda`` from the N = 1 measurement and solves the linearised form

    N X(1) / X(N) - 1 = (sigma + kappa) x + kappa x^2,    x = N - 1

by least squares without intercept (non-negative coefficients), which is exact on
noise-free data and needs no iterative solver.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class USL:
    lam: float
    sigma: float
    kappa: float
    #: coefficient of determination of the fitted X(N) against the measured throughputs
    r2: float

    def throughput(self, n: float) -> float:
        """Total tokens/s with ``n`` requests decoding together."""
        return self.lam * n / (1 + self.sigma * (n - 1) + self.kappa * n * (n - 1))

    def per_request(self, n: float) -> float:
        """Tokens/s each of ``n`` concurrent requests sees."""
        return self.throughput(n) / n

    def step_s(self, n: float) -> float:
        """Seconds per token of each request when ``n`` decode together."""
        return 1 / self.per_request(n)

    @property
    def peak_n(self) -> float:
        """Concurrency of the highest total throughput (infinite without coherency cost)."""
        return math.inf if self.kappa <= 0 else math.sqrt(max(0.0, 1 - self.sigma) / self.kappa)


def fit(points: Sequence[tuple[float, float]]) -> USL:
    """Fit ``(N, X(N))`` pairs; one of them must be N = 1. Raises ValueError on bad input."""
    if not points:
        raise ValueError("no measurements to fit")
    if any(n < 1 or x <= 0 for n, x in points):
        raise ValueError(f"every point needs N >= 1 and a positive throughput: {list(points)}")
    ones = [x for n, x in points if n == 1]
    if not ones:
        raise ValueError("the fit needs a measurement at N = 1 (the single-request throughput)")
    lam = sum(ones) / len(ones)
    xs = [n - 1 for n, _ in points]
    ys = [n * lam / x - 1 for n, x in points]
    sigma, kappa = _nonneg_quadratic(xs, ys)
    model = USL(lam, sigma, kappa, 1.0)
    return USL(lam, sigma, kappa, r_squared([x for _, x in points], [model.throughput(n) for n, _ in points]))


def _nonneg_quadratic(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least squares ``y = a x + b x^2`` with ``sigma = a - b >= 0`` and ``kappa = b >= 0``."""
    s2 = sum(x * x for x in xs)
    if s2 == 0:
        return 0.0, 0.0  # only N = 1 was measured: nothing to say about scaling
    s3 = sum(x**3 for x in xs)
    s4 = sum(x**4 for x in xs)
    t1 = sum(x * y for x, y in zip(xs, ys, strict=True))
    t2 = sum(x * x * y for x, y in zip(xs, ys, strict=True))
    det = s2 * s4 - s3 * s3
    if det > 1e-12 * s2 * s4:
        a = (t1 * s4 - t2 * s3) / det
        b = (s2 * t2 - s3 * t1) / det
        if b >= 0 and a - b >= 0:
            return a - b, b
    # a constraint binds: the best of the two one-parameter fits on the boundary
    candidates = []
    sigma_only = max(0.0, t1 / s2)  # kappa = 0: y = sigma x
    candidates.append((sigma_only, 0.0))
    # sigma = 0: y = kappa (x + x^2)
    g = [x + x * x for x in xs]
    kappa_only = max(0.0, sum(gi * y for gi, y in zip(g, ys, strict=True)) / sum(gi * gi for gi in g))
    candidates.append((0.0, kappa_only))

    def sse(c: tuple[float, float]) -> float:
        s, k = c
        return sum((y - ((s + k) * x + k * x * x)) ** 2 for x, y in zip(xs, ys, strict=True))

    return min(candidates, key=sse)


def r_squared(measured: Sequence[float], predicted: Sequence[float]) -> float:
    """1 - SS_res / SS_tot; 1.0 when the measurements do not vary and the fit is exact."""
    mean = sum(measured) / len(measured)
    ss_tot = sum((m - mean) ** 2 for m in measured)
    ss_res = sum((m - p) ** 2 for m, p in zip(measured, predicted, strict=True))
    if ss_tot == 0:
        return 1.0 if ss_res == 0 else 0.0
    return 1 - ss_res / ss_tot


def linear_fit(points: Sequence[tuple[float, float]]) -> tuple[float, float, float]:
    """``y = a + b x`` by least squares: ``(a, b, r2)``. Used for prefill time vs tokens."""
    if len(points) < 2:
        raise ValueError("a line needs at least two points")
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        raise ValueError("a line needs at least two distinct x values")
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    a = my - b * mx
    return a, b, r_squared([y for _, y in points], [a + b * x for x, _ in points])
