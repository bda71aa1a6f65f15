"""Seeded percentile bootstrap over images.

:func:`bootstrap` is the generic form: resample the rows of each array independently with
replacement, call ``fn`` on the resampled arrays, take percentiles. Metrics with a cheaper exact
form of the same resampling (the Gram-matrix FID route, KID from counts) use
:func:`resample_counts`, which draws the same indices from the same seed.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def percentile_interval(samples: np.ndarray, level: float = 0.95, center: float | None = None) -> tuple[float, float]:
    """The central ``level`` percentile interval of ``samples`` (NaN samples ignored).

    ``center``: the point estimate of a statistic that resampling with replacement biases (a
    Fréchet distance grows when images are duplicated); the bootstrap distribution is shifted so
    its mean is ``center`` before taking percentiles, which keeps the interval's width and skew
    but removes the resampling bias.
    """
    s = np.asarray(samples, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return float("nan"), float("nan")
    if center is not None:
        s = s - (s.mean() - center)
    alpha = (1 - level) / 2
    lo, hi = np.percentile(s, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


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
