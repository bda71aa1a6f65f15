"""DeLong's nonparametric ROC AUC statistics: variance, covariance, intervals and tests.

DeLong, DeLong & Clarke-Pearson (1988), *Biometrics* 44:837-845, computed with the fast
midrank algorithm of Sun & Xu (2014), *IEEE Signal Processing Letters* 21:1389-1393.

For scores of several classifiers on the *same* cases, the AUCs are U-statistics whose joint
covariance DeLong estimates from the "structural components" (placement values) of each case:

- ``V10[i]`` for a positive case i: the fraction of negatives it outscores (ties count 1/2);
- ``V01[j]`` for a negative case j: the fraction of positives that outscore it.

``cov(AUC) = S10 / m + S01 / n`` with ``S10``, ``S01`` the sample covariance matrices of the
placements over the m positives and n negatives. Any contrast ``L @ AUC`` (a difference, an average
over seeds, a difference of averages) then has variance ``L @ cov @ L``; that is DeLong's test.

>>> import numpy as np
>>> y = np.array([0, 0, 1, 1]); s = np.array([0.1, 0.4, 0.35, 0.8])
>>> round(delong_auc(y, s).auc, 3)
0.75
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import norm

from usbench.errors import InputError


@dataclass(frozen=True)
class AucEstimate:
    """An AUC (or a contrast of AUCs) with its DeLong standard error, normal CI and two-sided p-value
    against ``null`` (0.5 for a single AUC, 0 for a difference)."""

    auc: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    n_positive: int
    n_negative: int
    ci_level: float = 0.95

    def to_dict(self) -> dict:
        return asdict(self)


def _check_labels(y_true) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise InputError(f"labels must be 1-D, got shape {y.shape}", "pass one 0/1 label per case")
    values = set(np.unique(y).tolist())
    if not values <= {0, 1, False, True}:
        raise InputError(f"labels must be 0/1, got values {sorted(values)[:5]}", "encode the positive class as 1")
    y = y.astype(bool)
    if y.all() or not y.any():
        raise InputError(
            f"the AUC is undefined: the test cases hold only {'positives' if y.all() else 'negatives'} ({len(y)} cases)",
            "the test set needs cases of both classes; use a larger test split",
        )
    return y


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (scipy's 'average'), along the last axis."""
    from scipy.stats import rankdata

    return rankdata(x, method="average", axis=-1)


def placements(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs (k,), positive placements V10 (k, m) and negative placements V01 (k, n) for k score rows."""
    y = _check_labels(y_true)
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if s.shape[-1] != len(y):
        raise InputError(f"{s.shape[-1]} scores for {len(y)} labels", "give one score per case")
    if not np.isfinite(s).all():
        raise InputError("scores contain NaN or infinity", "check the classifier's outputs")
    pos, neg = s[:, y], s[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    r_all = _midranks(np.concatenate([pos, neg], axis=1))
    r_pos, r_neg = _midranks(pos), _midranks(neg)
    v10 = (r_all[:, :m] - r_pos) / n  # negatives below each positive (ties 1/2)
    v01 = 1.0 - (r_all[:, m:] - r_neg) / m  # positives above each negative (ties 1/2)
    auc = v10.mean(axis=1)
    return auc, v10, v01


def delong_covariance(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (k,) and their DeLong covariance matrix (k, k) for k score vectors on the same cases."""
    auc, v10, v01 = placements(y_true, scores)
    m, n = v10.shape[1], v01.shape[1]
    if m < 2 or n < 2:
        raise InputError(
            f"DeLong's variance needs at least 2 cases of each class, got {m} positive and {n} negative",
            "use a larger test split",
        )
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    return auc, s10 / m + s01 / n


def delong_contrast(y_true, scores, weights, null: float = 0.0, ci_level: float = 0.95) -> AucEstimate:
    """The contrast ``weights @ AUCs`` with its DeLong SE, normal CI and two-sided p-value against ``null``."""
    y = _check_labels(y_true)
    auc, cov = delong_covariance(y, scores)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != auc.shape:
        raise ValueError(f"{len(w)} weights for {len(auc)} score vectors")
    est = float(w @ auc)
    var = float(w @ cov @ w)
    se = math.sqrt(max(var, 0.0))
    z = norm.ppf(0.5 + ci_level / 2)
    if se > 1e-12:
        p = float(2 * norm.sf(abs(est - null) / se))
    else:  # perfectly separated or identical scores: no sampling variance is estimable
        se = 0.0
        p = 1.0 if abs(est - null) < 1e-9 else 0.0  # equal up to rounding of the weights
    # AUCs live in [0, 1], so the contrast lives in [sum of negative weights, sum of positive weights]
    # (an AUC in [0, 1], a difference in [-1, 1]); the interval is clipped there, as pROC does for one AUC
    lo = max(est - z * se, float(w[w < 0].sum()))
    hi = min(est + z * se, float(w[w > 0].sum()))
    return AucEstimate(est, float(se), float(lo), float(hi), p, int(y.sum()), int((~y).sum()), ci_level)


def delong_auc(y_true, scores, ci_level: float = 0.95) -> AucEstimate:
    """One AUC with DeLong's CI (clipped to [0, 1], as pROC does) and the p-value against 0.5."""
    return delong_contrast(y_true, np.atleast_2d(scores), [1.0], null=0.5, ci_level=ci_level)


def delong_test(y_true, scores_a, scores_b, ci_level: float = 0.95) -> AucEstimate:
    """DeLong's test for two correlated AUCs on the same cases: estimate AUC_b - AUC_a, CI, p-value."""
    return delong_contrast(y_true, np.vstack([scores_a, scores_b]), [-1.0, 1.0], null=0.0, ci_level=ci_level)


__all__ = ["AucEstimate", "delong_auc", "delong_contrast", "delong_covariance", "delong_test", "placements"]
