"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with a cubic polynomial kernel.

k(x, y) = (γ xᵀy + c)^degree with γ = 1/d, c = 1, degree 3; the estimate is the mean of the
unbiased MMD² over ``n_subsets`` random subsets of ``subset_size`` rows of each set, drawn like
torch-fidelity (``np.random.RandomState(seed).choice(n, m, replace=False)``, first set then
second), so with the same seed the subsets — and the value — are torch-fidelity's.
"""

from __future__ import annotations

import numpy as np

from usbench.errors import InputError
from usbench.metrics.bootstrap import percentile_interval, resample_counts
from usbench.metrics.frechet import check_features


def polynomial_kernel(X: np.ndarray, Y: np.ndarray, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> np.ndarray:
    """(γ X Yᵀ + c)^degree, γ = 1/d by default."""
    gamma = 1.0 / X.shape[1] if gamma is None else gamma
    return (X @ Y.T * gamma + coef0) ** degree


def mmd2_unbiased(K_xx: np.ndarray, K_xy: np.ndarray, K_yy: np.ndarray) -> float:
    """Unbiased MMD² of equal-size samples (diagonals of K_xx, K_yy dropped; K_xy kept whole).

    Example:
        >>> import numpy as np
        >>> K = np.ones((3, 3))
        >>> mmd2_unbiased(K, K, K)
        0.0
    """
    m = K_xx.shape[0]
    sxx = K_xx.sum() - np.trace(K_xx)
    syy = K_yy.sum() - np.trace(K_yy)
    return float((sxx + syy) / (m * (m - 1)) - 2 * K_xy.sum() / (m * m))


def kid_from_features(X1: np.ndarray, X2: np.ndarray, n_subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> tuple[float, float, dict]:
    """KID of two feature matrices: (mean, std over subsets, details).

    When a set has fewer rows than ``subset_size``, the subset size becomes min(n1, n2) and the
    details say so (``subset_size_reduced``); it is never silent.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X, Y = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))
        >>> kid, std, info = kid_from_features(X, Y, n_subsets=10, subset_size=100)
        >>> bool(abs(kid) < 0.05), info["subset_size"]
        (True, 100)
        >>> kid2, _, _ = kid_from_features(X, Y + 1.0, n_subsets=10, subset_size=100)
        >>> bool(kid2 > 10 * abs(kid))
        True
    """
    X1, X2 = check_features(X1, "generated features"), check_features(X2, "reference features")
    if X1.shape[1] != X2.shape[1]:
        raise InputError(f"feature dimensions differ: {X1.shape[1]} vs {X2.shape[1]}", "use the same extractor for both sets")
    if max(len(X1), len(X2)) > GRAM_LIMIT:  # whole-set kernels would not fit: kernels per subset
        mean, std, details = kid_by_subsets(X1, X2, n_subsets, subset_size, seed, degree, gamma, coef0)
    else:
        grams = kernel_grams(X1, X2, degree, gamma, coef0)
        mean, std, details = kid_from_grams(*grams, n_subsets=n_subsets, subset_size=subset_size, seed=seed)
    details["kernel"] = f"poly(degree={degree}, gamma={'1/d' if gamma is None else gamma}, coef0={coef0})"
    return mean, std, details


GRAM_LIMIT = 4000  # rows per set above which n×n kernel matrices are not formed


def _subset_plan(n1: int, n2: int, n_subsets: int, subset_size: int, seed: int) -> tuple[int, dict, np.random.RandomState]:
    """Subset size (never silently reduced: the details say so), details, and torch-fidelity's RNG."""
    m = min(subset_size, n1, n2)
    details: dict = {"subset_size": int(m), "n_subsets": int(n_subsets), "seed": int(seed)}
    if m < subset_size:
        details["subset_size_reduced"] = f"n below subset size {subset_size}: subsets of {m} images used"
    return m, details, np.random.RandomState(seed)


def kid_by_subsets(X1: np.ndarray, X2: np.ndarray, n_subsets: int, subset_size: int, seed: int, degree: int = 3,
                   gamma: float | None = None, coef0: float = 1.0) -> tuple[float, float, dict]:
    """KID with kernels computed per subset (large sets); same subsets as :func:`kid_from_grams`."""
    n1, n2 = len(X1), len(X2)
    m, details, rng = _subset_plan(n1, n2, n_subsets, subset_size, seed)
    mmds = np.empty(n_subsets)
    for s in range(n_subsets):
        a = X1[rng.choice(n1, m, replace=False)]
        b = X2[rng.choice(n2, m, replace=False)]
        k = lambda x, y: polynomial_kernel(x, y, degree, gamma, coef0)  # noqa: E731
        mmds[s] = mmd2_unbiased(k(a, a), k(a, b), k(b, b))
    return float(mmds.mean()), float(mmds.std()), details


def kernel_grams(X1: np.ndarray, X2: np.ndarray, degree: int = 3, gamma: float | None = None,
                 coef0: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kernel matrices K11, K22, K12 of the whole sets (subsets and resamples index into them)."""
    return (polynomial_kernel(X1, X1, degree, gamma, coef0), polynomial_kernel(X2, X2, degree, gamma, coef0),
            polynomial_kernel(X1, X2, degree, gamma, coef0))


def kid_from_grams(K11: np.ndarray, K22: np.ndarray, K12: np.ndarray, n_subsets: int = 100,
                   subset_size: int = 1000, seed: int = 0) -> tuple[float, float, dict]:
    """KID from whole-set kernel matrices: subsets drawn as torch-fidelity draws them."""
    n1, n2 = len(K11), len(K22)
    m, details, rng = _subset_plan(n1, n2, n_subsets, subset_size, seed)
    mmds = np.empty(n_subsets)
    for s in range(n_subsets):
        i = rng.choice(n1, m, replace=False)
        j = rng.choice(n2, m, replace=False)
        mmds[s] = mmd2_unbiased(K11[np.ix_(i, i)], K12[np.ix_(i, j)], K22[np.ix_(j, j)])
    return float(mmds.mean()), float(mmds.std()), details


def kid_bootstrap(K11: np.ndarray, K22: np.ndarray, K12: np.ndarray, B: int, seed: int,
                  level: float = 0.95, return_values: bool = False):
    """Percentile bootstrap over images of the all-pairs unbiased MMD² (same expectation as KID).

    Each resample is a vector of multiplicities; pairs made of two copies of the same image are
    left out of the within-set sums, so resampling ties do not inflate the kernel terms.
    """
    if B <= 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    d11, d22 = np.diag(K11), np.diag(K22)
    vals = np.empty(B)
    from usbench.common import single_blas_thread

    with single_blas_thread(), np.errstate(invalid="ignore", divide="ignore"):
        _kid_resamples(vals, rng, K11, K22, K12, d11, d22)  # a resample of one image repeated is NaN: ignored
    lo, hi = percentile_interval(vals, level)
    return (lo, hi, vals) if return_values else (lo, hi)


def _kid_resamples(vals, rng, K11, K22, K12, d11, d22):
    n1, n2 = len(K11), len(K22)
    for b in range(len(vals)):
        w1, w2 = resample_counts(rng, (n1, n2))
        w1f, w2f = w1.astype(np.float64), w2.astype(np.float64)
        sxx = w1f @ K11 @ w1f - (w1f**2) @ d11
        syy = w2f @ K22 @ w2f - (w2f**2) @ d22
        pxx = n1 * n1 - (w1f**2).sum()
        pyy = n2 * n2 - (w2f**2).sum()
        vals[b] = sxx / pxx + syy / pyy - 2 * (w1f @ K12 @ w2f) / (n1 * n2)
