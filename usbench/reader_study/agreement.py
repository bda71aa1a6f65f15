"""Agreement between readers and of a reader with themself.

* Fleiss' kappa over all readers (statsmodels), nominal;
* Cohen's kappa with quadratic weights for every reader pair (scikit-learn);
* Krippendorff's alpha, ordinal by default (the ``krippendorff`` package), which allows missing ratings;
* intra-reader consistency: a reader's first and repeated rating of the same image.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

SCALE = (1, 2, 3, 4, 5)


def rating_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """Readers x cases matrix of ratings (NaN where a reader did not rate a case)."""
    return df.pivot_table(index="reader", columns="case", values="rating", aggfunc="first")


def fleiss_kappa(matrix: pd.DataFrame) -> float:
    """Fleiss' kappa over the cases every reader rated."""
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa as _fk

    full = matrix.dropna(axis=1, how="any")
    if full.shape[0] < 2 or full.shape[1] < 1:
        return float("nan")
    table, _ = aggregate_raters(full.to_numpy().T.astype(int), n_cat=None)
    return float(_fk(table, method="fleiss"))


def pairwise_weighted_kappa(matrix: pd.DataFrame, weights: str = "quadratic") -> list[dict]:
    from sklearn.metrics import cohen_kappa_score

    out = []
    for a, b in combinations(matrix.index, 2):
        both = matrix.loc[[a, b]].dropna(axis=1, how="any")
        k = float(cohen_kappa_score(both.loc[a].astype(int), both.loc[b].astype(int), labels=list(SCALE), weights=weights)) \
            if both.shape[1] > 1 else float("nan")
        out.append({"readers": [str(a), str(b)], "kappa": k, "n": int(both.shape[1]), "weights": weights})
    return out


def krippendorff_alpha(matrix: pd.DataFrame, level: str = "ordinal") -> float:
    import krippendorff

    data = matrix.to_numpy(dtype=float)
    if data.shape[0] < 2 or np.isfinite(data).sum() < 2:
        return float("nan")
    try:
        return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level, value_domain=list(SCALE) if level == "ordinal" else None))
    except ValueError:  # only one distinct value in the data: agreement is undefined
        return float("nan")


def intra_reader(pairs: pd.DataFrame) -> list[dict]:
    """Per reader, from rows ``reader, first, second``: exact agreement and quadratic-weighted kappa."""
    from sklearn.metrics import cohen_kappa_score

    out = []
    for reader, g in pairs.groupby("reader"):
        first, second = g["first"].astype(int), g["second"].astype(int)
        kappa = float(cohen_kappa_score(first, second, labels=list(SCALE), weights="quadratic")) if len(g) > 1 else float("nan")
        out.append({"reader": str(reader), "n": int(len(g)), "exact_agreement": float((first == second).mean()),
                    "mean_abs_difference": float((first - second).abs().mean()), "weighted_kappa": kappa})
    return out


def agreement(df: pd.DataFrame) -> dict:
    """All agreement statistics from a long table with ``reader, case, rating``."""
    m = rating_matrix(df)
    return {
        "fleiss_kappa": fleiss_kappa(m),
        "krippendorff_alpha_ordinal": krippendorff_alpha(m, "ordinal"),
        "weighted_kappa_pairs": pairwise_weighted_kappa(m),
    }
