"""Seeded resampling over images and the intervals built from it.

:func:`bootstrap` is the generic form: resample the rows of each array independently with
replacement, call ``fn`` on the resampled arrays. Metrics with a cheaper exact form of the same
resampling (the Gram-matrix FID route, KID from counts) use :func:`resample_counts`, which
draws the same indices from the same seed.

Three interval constructions (which metric uses which, and the coverage measured, are in
docs/metrics.md and ``tests/test_metrics_coverage.py``):

- :func:`percentile_interval`: quantiles of the resampled values (unbiased statistics: KID's
  MMD², shares of images);
- :func:`basic_interval`: the basic ("reverse percentile") bootstrap 2θ̂ − q, which also
  removes the bias the resampling reproduces (Fréchet distances, FD∞), optionally clipped at
  a bound the estimand cannot cross (a squared distance is never below 0);
- :func:`half_sampling_interval`: half-samples without replacement, θ̂ − √(m/(n−m))·(θ*_m − θ̄*_m):
  for statistics that duplicated images break (k-NN balls of PRDC).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` percentile interval of ``samples`` (NaN samples ignored)."""
    s = np.asarray(samples, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    lo, hi = np.percentile(s, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


def basic_interval(samples: np.ndarray, estimate: float, level: float = 0.95,
                   lower_bound: float | None = None) -> tuple[float, float]:
    """Basic bootstrap interval [2θ̂ − q_(1−α/2), 2θ̂ − q_(α/2)] (Davison & Hinkley 1997, eq. 5.6).

    The spread of θ* around θ̂ stands in for that of θ̂ around θ, so a bias that resampling
    reproduces (duplicated images inflate a Fréchet distance as a finite sample does) is
    subtracted, not added. ``lower_bound`` clips the interval at a value the estimand cannot
    go below (0 for a squared distance).

    Example:
        >>> basic_interval([1.0, 2.0, 3.0], 1.0, level=0.5, lower_bound=0.0)
        (0.0, 0.5)
    """
    lo, hi = percentile_interval(samples, level)
    if np.isnan(lo):
        return lo, hi
    lo, hi = 2 * estimate - hi, 2 * estimate - lo
    if lower_bound is not None:
        lo, hi = max(lo, lower_bound), max(hi, lower_bound)
    return float(lo), float(hi)


def half_sampling_interval(samples: np.ndarray, estimate: float, m: int, n: int,
                           level: float = 0.95) -> tuple[float, float]:
    """Subsampling interval from statistics of ``m``-of-``n`` subsamples drawn without replacement
    (Politis, Romano & Wolf 1999): θ̂ minus the quantiles of √(m/(n−m))·(θ*_m − mean θ*_m).

    √(m/(n−m)) rescales the spread of a without-replacement subsample (finite-population
    correction included) to that of the full sample; centring on the subsamples' own mean
    removes the difference between the statistic's expectation at m and at n.
    """
    s = np.asarray(samples, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0 or m >= n:
        return float("nan"), float("nan")
    dev = np.sqrt(m / (n - m)) * (s - s.mean())
    alpha = (1 - level) / 2
    q_lo, q_hi = np.percentile(dev, [100 * alpha, 100 * (1 - alpha)])
    return float(estimate - q_hi), float(estimate - q_lo)


def half_sample_indices(rng: np.random.Generator, sizes: Sequence[int]) -> list[np.ndarray]:
    """One half-sample: for each array size n, n // 2 distinct indices (sorted)."""
    return [np.sort(rng.choice(n, size=n // 2, replace=False)) for n in sizes]


def resample_indices(rng: np.random.Generator, sizes: Sequence[int]) -> list[np.ndarray]:
    """One bootstrap draw: for each array size n, n indices drawn with replacement."""
    return [rng.integers(0, n, size=n) for n in sizes]


def resample_counts(rng: np.random.Generator, sizes: Sequence[int]) -> list[np.ndarray]:
    """The same draw as :func:`resample_indices`, as multiplicities (``bincount``) per row."""
    return [np.bincount(idx, minlength=n) for idx, n in zip(resample_indices(rng, sizes), sizes)]


def bootstrap(fn: Callable[..., float], arrays: Sequence[np.ndarray], B: int = 1000, seed: int = 0,
              level: float = 0.95) -> tuple[float, float, np.ndarray]:
    """Percentile bootstrap of ``fn(*arrays)``: rows of each array resampled independently.

    Returns (low, high, the B bootstrap values). ``B = 0`` gives NaN bounds.

    Example:
        >>> import numpy as np
        >>> x = np.arange(100.0)[:, None]
        >>> lo, hi, _ = bootstrap(lambda a: float(a.mean()), [x], B=500, seed=1)
        >>> bool(lo < 49.5 < hi), bool(hi - lo < 25)
        (True, True)
    """
    if B <= 0:
        return float("nan"), float("nan"), np.empty(0)
    rng = np.random.default_rng(seed)
    sizes = [len(a) for a in arrays]
    values = np.empty(B)
    for b in range(B):
        idx = resample_indices(rng, sizes)
        values[b] = fn(*[a[i] for a, i in zip(arrays, idx)])
    lo, hi = percentile_interval(values, level)
    return lo, hi, values
