"""Precision, recall, density and coverage (Naeem et al. 2020) on k-nearest-neighbour balls.

Same definitions and conventions as the ``prdc`` package (strict ``<``, the k-th neighbour
radius counts the point itself as its 0-th neighbour). The per-image indicators are kept so the
bootstrap can resample images without recomputing the manifolds.
"""

from __future__ import annotations

import numpy as np

from usbench.errors import NotEnoughImagesError
from usbench.metrics.frechet import check_features


def pairwise_distances(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Euclidean distances, computed like scikit-learn (‖x‖² + ‖y‖² − 2xᵀy, clipped at 0)."""
    from sklearn.metrics import pairwise_distances as skl

    return skl(X, Y, metric="euclidean")


def knn_radii(D_self: np.ndarray, k: int) -> np.ndarray:
    """Distance of each row to its k-th nearest neighbour (itself excluded) from a square distance matrix."""
    return np.partition(D_self, k, axis=1)[:, k]


def prdc_indicators(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, np.ndarray]:
    """Per-image indicators whose means are the four metrics.

    precision/density are per generated image, recall/coverage per real image.
    """
    real, fake = check_features(real, "reference features"), check_features(fake, "generated features")
    if min(len(real), len(fake)) <= k:
        raise NotEnoughImagesError(f"prdc with k={k} needs more than {k} images per set, got {len(real)} real and {len(fake)} generated",
                                   "use more images or a smaller k")
    return indicators_from_distances(pairwise_distances(real, real), pairwise_distances(fake, fake),
                                     pairwise_distances(real, fake), k)


def indicators_from_distances(D_rr: np.ndarray, D_ff: np.ndarray, D: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """:func:`prdc_indicators` from the real-real, fake-fake and real-fake distance matrices."""
    r_real = knn_radii(D_rr, k)
    r_fake = knn_radii(D_ff, k)
    inside_real = D < r_real[:, None]  # (n_real, n_fake): fake j inside the ball of real i
    return {
        "precision": inside_real.any(axis=0).astype(np.float64),
        "density": inside_real.sum(axis=0) / float(k),
        "recall": (D < r_fake[None, :]).any(axis=1).astype(np.float64),
        "coverage": (D.min(axis=1) < r_real).astype(np.float64),
    }


def prdc_from_features(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """Precision, recall, density, coverage of ``fake`` against ``real`` (both (n, d)).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> r = prdc_from_features(rng.normal(size=(300, 4)), rng.normal(size=(300, 4)))
        >>> bool(r["precision"] > 0.8 and r["recall"] > 0.8)
        True
        >>> r = prdc_from_features(rng.normal(size=(300, 4)), rng.normal(5.0, size=(300, 4)))
        >>> r["precision"], r["coverage"]
        (0.0, 0.0)
    """
    return {name: float(v.mean()) for name, v in prdc_indicators(real, fake, k).items()}


def prdc_subsampling(real: np.ndarray, fake: np.ndarray, k: int, B: int, seed: int, level: float = 0.95,
                     estimates: dict[str, float] | None = None, fraction: float = 0.9) -> dict[str, tuple[float, float]]:
    """Subsampling intervals (:func:`usbench.metrics.bootstrap.half_sampling_interval` with
    m = ``fraction``·n, i.e. a delete-d jackknife with d = n/10, Shao & Wu 1989) of the four
    metrics: B times, 90% of the real and of the generated images drawn without replacement, the
    k-NN balls rebuilt on them, the four metrics recomputed. (Half-samples covered only 0.84–0.90
    in the simulation of ``tests/test_metrics_coverage.py``: the balls of half-sized sets are too
    different from the full ones; 90% covers ≥ 0.93.)

    Estimand: each metric's expected value for sets of these sizes (PRDC has no sample-size-free
    population value: the balls shrink as N grows). Resampling with replacement is not used:
    a duplicated image is its own nearest neighbour and collapses its ball. Both sets vary,
    so the uncertainty of the balls is in the interval, not only that of the images scored.
    """
    from usbench.metrics.bootstrap import half_sampling_interval

    real, fake = check_features(real, "reference features"), check_features(fake, "generated features")
    names = ("precision", "recall", "density", "coverage")
    n_real, n_fake = len(real), len(fake)
    m_real, m_fake = int(n_real * fraction), int(n_fake * fraction)
    if B <= 0 or min(m_real, m_fake) <= k or max(m_real, m_fake) >= min(n_real, n_fake):  # no interval when a half cannot hold k neighbours
        return {n: (float("nan"), float("nan")) for n in names}
    D_rr, D_ff, D = pairwise_distances(real, real), pairwise_distances(fake, fake), pairwise_distances(real, fake)
    if estimates is None:
        estimates = {n: float(v.mean()) for n, v in indicators_from_distances(D_rr, D_ff, D, k).items()}
    rng = np.random.default_rng(seed)
    vals = {n: np.empty(B) for n in names}
    near_rr, near_ff = SortedNeighbours(D_rr), SortedNeighbours(D_ff)
    for b in range(B):
        ir, jf = np.sort(rng.choice(n_real, m_real, replace=False)), np.sort(rng.choice(n_fake, m_fake, replace=False))
        for n, v in subset_indicator_means(D, near_rr, near_ff, ir, jf, k).items():
            vals[n][b] = v
    out = {}
    for n in names:  # precision/density per generated image, recall/coverage per real one
        size, m = (n_fake, m_fake) if n in ("precision", "density") else (n_real, m_real)
        lo, hi = half_sampling_interval(vals[n], estimates[n], m, size, level)
        if n != "density":
            # a share near 0 or 1: every subsample can give the same value (e.g. recall 1.0) and the
            # subsampling interval collapses to a point; the Wilson score interval of the share over its
            # items is a floor for the width (far-scenario recall: coverage 0.715 -> see RESULTS.md)
            w_lo, w_hi = wilson_interval(estimates[n], size, level)
            lo, hi = min(lo, w_lo), max(hi, w_hi)
        upper = np.inf if n == "density" else 1.0
        out[n] = (float(min(max(lo, 0.0), upper)), float(min(max(hi, 0.0), upper)))
    return out


class SortedNeighbours:
    """Each row's nearest columns of a square distance matrix, sorted once, so the k-th neighbour
    radius *within a subset* is read off the first in-subset entries instead of re-partitioning
    the subset's matrix (10× the cost of everything else in a subsampling draw).

    ``width`` columns are kept (all when the matrix is small); a row whose first ``width``
    neighbours hold fewer than k + 1 of the subset falls back to :func:`knn_radii` on its row.
    """

    def __init__(self, D_self: np.ndarray, width: int = 64):
        self.D = D_self
        n = len(D_self)
        width = min(width, n)
        part = np.argpartition(D_self, width - 1, axis=1)[:, :width] if width < n else np.tile(np.arange(n), (n, 1))
        d = np.take_along_axis(D_self, part, axis=1)
        order = np.argsort(d, axis=1, kind="stable")
        self.index, self.dist = np.take_along_axis(part, order, axis=1), np.take_along_axis(d, order, axis=1)

    def radii(self, rows: np.ndarray, k: int) -> np.ndarray:
        """For each of ``rows`` (a subset, sorted), the distance to its k-th neighbour inside the subset
        (itself the 0-th): equal to ``knn_radii(D[np.ix_(rows, rows)], k)``, the same floats."""
        member = np.zeros(len(self.D), dtype=bool)
        member[rows] = True
        inside = member[self.index[rows]]  # (m, width)
        count = np.cumsum(inside, axis=1)
        pos = np.argmax(count > k, axis=1)
        found = count[:, -1] > k
        out = self.dist[rows, pos]
        for r in np.flatnonzero(~found):  # rare: fewer than k + 1 subset members among the nearest kept
            out[r] = np.partition(self.D[rows[r], rows], k)[k]
        return out


def subset_indicator_means(D: np.ndarray, near_rr: SortedNeighbours, near_ff: SortedNeighbours,
                           ir: np.ndarray, jf: np.ndarray, k: int) -> dict[str, float]:
    """The four metrics of real images ``ir`` against generated images ``jf`` (both sorted index
    arrays): the means of ``indicators_from_distances`` on the subsets' matrices, without copying
    them. Balls of images outside the subsets get radius −∞ so that they contain nothing."""
    r_real = np.full(D.shape[0], -np.inf)
    r_real[ir] = near_rr.radii(ir, k)
    r_fake = np.full(D.shape[1], -np.inf)
    r_fake[jf] = near_ff.radii(jf, k)
    inside_real = D < r_real[:, None]  # rows outside ir are all False
    in_sub = inside_real[:, jf]
    return {
        "precision": float(in_sub.any(axis=0).mean()),
        "density": float((in_sub.sum(axis=0) / float(k)).mean()),  # this order: the same float as the indicators' mean
        "recall": float((D[ir] < r_fake[None, :]).any(axis=1).mean()),
        "coverage": float(in_sub[ir].any(axis=1).mean()),
    }


def wilson_interval(share: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson's (1927) score interval of a proportion ``share`` observed over ``n`` items.

    Example (statsmodels' ``proportion_confint(..., method="wilson")`` gives the same):
        >>> [round(x, 4) for x in wilson_interval(1.0, 100)]
        [0.963, 1.0]
    """
    from statistics import NormalDist

    if n <= 0 or not np.isfinite(share):
        return float("nan"), float("nan")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return float(max(centre - half, 0.0)), float(min(centre + half, 1.0))

