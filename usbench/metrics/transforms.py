"""Feature transforms that make hand-crafted features usable by kernel and k-NN metrics.

Radiomic features span ten decades and have heavy tails: z-scored, one outlying feature of a
degraded set reaches |z| ~ 1e4 and the cubic kernel of KID (or the Euclidean balls of PRDC)
then ranks that one outlier, not the distributions. :func:`rank_gaussian` is the rank-based
inverse normal transformation (Beasley, Erickson & Allison 2009, Behav. Genet. 39:580; Blom's
offset): each feature is mapped through the empirical CDF of the *reference* set, then through
Φ⁻¹, so the reference is standard normal in every feature. Values outside the reference's range
continue linearly in units of the reference's robust spread (1.4826·MAD), so distances keep
growing with the degradation instead of saturating at the last rank, and are clipped at
±``clip`` so that no single feature can dominate a kernel.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

CLIP = 6.0


def rank_gaussian(ref: np.ndarray, *others: np.ndarray, clip: float = CLIP) -> tuple[list[np.ndarray], int]:
    """(``[ref, *others]`` transformed, number of features dropped) — features constant in the
    reference are dropped, every column mapped through the reference's CDF and Φ⁻¹.

    Example:
        >>> import numpy as np
        >>> ref = np.arange(10.0)[:, None]
        >>> (r, far), dropped = rank_gaussian(ref, np.array([[4.5], [1e9]]))
        >>> abs(float(r.mean())) < 1e-12, float(far[0, 0]) == 0.0, float(far[1, 0]), dropped
        (True, True, 6.0, 0)
    """
    ref = np.asarray(ref, np.float64)
    keep = ref.std(0) > 0
    kept = ref[:, keep]
    n = len(kept)
    srt = np.sort(kept, axis=0)
    spread = 1.4826 * np.median(np.abs(kept - np.median(kept, 0)), 0)
    spread = np.where(spread > 0, spread, kept.std(0))
    z_lo, z_hi = ndtri(0.5 / (n + 1)), ndtri((n + 0.5) / (n + 1))

    def one(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, np.float64)[:, keep]
        out = np.empty_like(X)
        for j in range(X.shape[1]):
            col = srt[:, j]
            mid = (np.searchsorted(col, X[:, j], "left") + np.searchsorted(col, X[:, j], "right")) / 2.0
            z = ndtri((mid + 0.5) / (n + 1))
            z = np.where(X[:, j] > col[-1], z_hi + (X[:, j] - col[-1]) / spread[j], z)
            z = np.where(X[:, j] < col[0], z_lo - (col[0] - X[:, j]) / spread[j], z)
            out[:, j] = np.clip(z, -clip, clip)
        return out

    return [one(ref), *[one(X) for X in others]], int((~keep).sum())
