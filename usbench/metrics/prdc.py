"""Precision, recall, density and coverage (Naeem et al. 2020) on k-nearest-neighbour balls.

Same definitions and conventions as the ``prdc`` package (strict ``<``, the k-th neighbour
radius counts the point itself as its 0-th neighbour). The per-image indicators are kept so the
bootstrap can resample images without recomputing the manifolds.
"""

from __future__ import annotations

import numpy as np

from usbench.errors import NotEnoughImagesError
from usbench.metrics.bootstrap import percentile_interval, resample_indices
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
    r_real = knn_radii(pairwise_distances(real, real), k)
    r_fake = knn_radii(pairwise_distances(fake, fake), k)
    D = pairwise_distances(real, fake)
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


def prdc_bootstrap(indicators: dict[str, np.ndarray], B: int, seed: int, level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile intervals: generated images resampled for precision/density, real ones for
    recall/coverage, with the k-NN balls of the full sets held fixed."""
    rng = np.random.default_rng(seed)
    n_fake, n_real = len(indicators["precision"]), len(indicators["recall"])
    vals = {name: np.empty(B) for name in indicators}
    for b in range(B):
        i_fake, i_real = resample_indices(rng, (n_fake, n_real))
        for name in ("precision", "density"):
            vals[name][b] = indicators[name][i_fake].mean()
        for name in ("recall", "coverage"):
            vals[name][b] = indicators[name][i_real].mean()
    return {name: percentile_interval(v, level) for name, v in vals.items()}
