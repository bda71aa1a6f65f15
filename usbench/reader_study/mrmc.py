"""Multi-reader multi-case (MRMC) ROC analysis: Obuchowski–Rockette (OR) with Hillis' degrees of
freedom, and Dorfman–Berbaum–Metz (DBM) on jackknife pseudovalues.

The figure of merit is the empirical (trapezoidal, Mann–Whitney) AUC of each reader in each
treatment. Its case-sampling covariance matrix is estimated by one of

* ``jackknife`` — leave one case out (Hillis et al. 2005; equals DBM),
* ``delong``    — DeLong, DeLong & Clarke-Pearson (1988) structural components,
* ``unbiased``  — Gallas (2006) unbiased U-statistic moments.

OR (Obuchowski & Rockette 1995) tests the treatment effect from the AUC mean squares and the
three covariances Cov1 (same reader, different treatments), Cov2 (different readers, same
treatment), Cov3 (different readers, different treatments); Hillis (2007, 2008) gives the
denominator degrees of freedom and the constraint ``max(Cov2 - Cov3, 0)``.

Layers: :func:`prepare` (long table → arrays, with validation) → :func:`auc_matrix` and
:func:`auc_covariance` → :func:`or_analysis` / :func:`dbm_analysis`; :func:`mrmc` runs them all.

Nested designs: a case need not appear in every treatment (``present[t, k]`` False). DeLong
covariances are then computed from the cases two AUCs share (each truth stratum on its own),
which is exact for the structural-component estimator; the jackknife and the unbiased estimator
assume every case in every treatment and refuse a nested design.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from usbench.errors import InputError

REQUIRED_COLUMNS = ("reader", "treatment", "case", "truth", "rating")
COV_METHODS = ("jackknife", "delong", "unbiased")


# --------------------------------------------------------------------------------------------
# Data


@dataclass
class MRMCData:
    """Ratings as arrays. ``ratings[t, r, k]`` is NaN where case k is not in treatment t."""

    treatments: list
    readers: list
    cases: list
    truth: np.ndarray  # (K,) 0 = negative, 1 = positive
    ratings: np.ndarray  # (T, R, K)
    present: np.ndarray  # (T, K) bool

    @property
    def fully_crossed(self) -> bool:
        return bool(self.present.all())


def prepare(df: pd.DataFrame, source: str = "ratings") -> MRMCData:
    """Validate a long table ``reader, treatment, case, truth, rating`` and turn it into arrays.

    Raises :class:`InputError` for missing columns, non-numeric ratings, a case rated twice by a
    reader in a treatment, a case with two truths, fewer than 2 readers or treatments, a truth class
    missing, or a reader who skipped a case of a treatment.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(
            f"{source} lacks the column(s) {', '.join(missing)}",
            f"an MRMC table needs the columns {','.join(REQUIRED_COLUMNS)}",
        )
    df = df[list(REQUIRED_COLUMNS)].copy()
    if df[list(REQUIRED_COLUMNS)].isna().any().any():
        raise InputError(f"{source} has empty cells", "every row needs reader, treatment, case, truth and rating")
    try:
        df["rating"] = pd.to_numeric(df["rating"])
        df["truth"] = pd.to_numeric(df["truth"]).astype(int)
    except (ValueError, TypeError):
        raise InputError(f"{source} has a non-numeric rating or truth", "ratings are numbers, truth is 0 or 1") from None
    if not set(df["truth"].unique()) <= {0, 1}:
        raise InputError(f"{source} has truth values other than 0 and 1", "use 1 for positive (abnormal/synthetic), 0 otherwise")
    for col in ("reader", "treatment", "case"):
        df[col] = df[col].astype(str)
    dup = df.duplicated(["reader", "treatment", "case"], keep=False)
    if dup.any():
        row = df[dup].iloc[0]
        raise InputError(
            f"{source}: case {row['case']} is rated twice by reader {row['reader']} in treatment {row['treatment']}",
            "keep one rating per reader, treatment and case",
        )
    truths = df.groupby("case")["truth"].nunique()
    if (truths > 1).any():
        raise InputError(f"{source}: case {truths[truths > 1].index[0]} has two truth values", "a case is either positive or negative")
    readers = _sorted_labels(df["reader"].unique())
    treatments = _sorted_labels(df["treatment"].unique())
    if len(readers) < 2:
        raise InputError(f"{source} has a single reader ({readers[0]})", "MRMC analysis needs at least 2 readers")
    if len(treatments) < 2:
        raise InputError(f"{source} has a single treatment ({treatments[0]})", "MRMC analysis compares at least 2 treatments (modalities/generators)")
    cases = _sorted_labels(df["case"].unique())
    ti = {t: i for i, t in enumerate(treatments)}
    ri = {r: i for i, r in enumerate(readers)}
    ki = {c: i for i, c in enumerate(cases)}
    T, R, K = len(treatments), len(readers), len(cases)
    ratings = np.full((T, R, K), np.nan)
    ratings[df["treatment"].map(ti).to_numpy(), df["reader"].map(ri).to_numpy(), df["case"].map(ki).to_numpy()] = df["rating"].to_numpy(float)
    truth_by_case = df.groupby("case")["truth"].first()
    truth = np.array([truth_by_case[c] for c in cases], dtype=int)
    seen = ~np.isnan(ratings)
    present = seen.any(axis=1)
    incomplete = present[:, None, :] & ~seen
    if incomplete.any():
        t, r, k = np.argwhere(incomplete)[0]
        raise InputError(
            f"{source}: reader {readers[r]} did not rate case {cases[k]} in treatment {treatments[t]}, which other readers rated",
            "every reader must rate every case of a treatment (drop the case or the reader)",
        )
    for t in range(T):
        n_pos, n_neg = int((truth[present[t]] == 1).sum()), int((truth[present[t]] == 0).sum())
        if min(n_pos, n_neg) < 2:
            raise InputError(
                f"{source}: treatment {treatments[t]} has {n_pos} positive and {n_neg} negative cases",
                "the AUC variance needs at least 2 positive (truth 1) and 2 negative (truth 0) cases per treatment",
            )
    return MRMCData(treatments, readers, cases, truth, ratings, present)


def _sorted_labels(values) -> list:
    """Sort labels numerically when they all are numbers, else as text."""
    vals = list(values)
    try:
        return sorted(vals, key=lambda v: float(v))
    except ValueError:
        return sorted(vals)


# --------------------------------------------------------------------------------------------
# Figure of merit and its covariance


def _kernel(neg: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Mann–Whitney kernel matrix s[i, j] = 1 if pos_j > neg_i, 0.5 if tied, 0 else (n0 x n1)."""
    d = pos[None, :] - neg[:, None]
    return (d > 0) + 0.5 * (d == 0)


def _kernels(data: MRMCData) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(t, r) → (kernel matrix, negative case indices, positive case indices)."""
    out = {}
    for t in range(len(data.treatments)):
        neg = np.flatnonzero(data.present[t] & (data.truth == 0))
        pos = np.flatnonzero(data.present[t] & (data.truth == 1))
        for r in range(len(data.readers)):
            y = data.ratings[t, r]
            out[t, r] = (_kernel(y[neg], y[pos]), neg, pos)
    return out


def auc_matrix(data: MRMCData) -> np.ndarray:
    """Empirical AUC of every (treatment, reader): shape (T, R)."""
    ker = _kernels(data)
    return np.array([[ker[t, r][0].mean() for r in range(len(data.readers))] for t in range(len(data.treatments))])


def jackknife_aucs(data: MRMCData) -> np.ndarray:
    """Leave-one-case-out AUCs: shape (T, R, K)."""
    T, R, K = data.ratings.shape
    out = np.empty((T, R, K))
    for (t, r), (S, neg, pos) in _kernels(data).items():
        n0, n1 = S.shape
        total = S.sum()
        out[t, r, :] = total / (n0 * n1)
        out[t, r, neg] = (total - S.sum(axis=1)) / ((n0 - 1) * n1)
        out[t, r, pos] = (total - S.sum(axis=0)) / (n0 * (n1 - 1))
    return out


def auc_covariance(data: MRMCData, method: str = "jackknife") -> np.ndarray:
    """Covariance matrix of the (T*R) AUCs, index ``t * R + r``."""
    if method not in COV_METHODS:
        raise InputError(f"unknown covariance method {method!r}", f"choose one of {', '.join(COV_METHODS)}")
    if method != "delong" and not data.fully_crossed:
        raise InputError(
            f"the {method} covariance needs every case in every treatment, but this design is nested",
            "use --cov delong for nested designs",
        )
    T, R, K = data.ratings.shape
    if method == "jackknife":
        jk = jackknife_aucs(data).reshape(T * R, K)
        dev = jk - jk.mean(axis=1, keepdims=True)
        return (K - 1) / K * dev @ dev.T
    ker = _kernels(data)
    keys = [(t, r) for t in range(T) for r in range(R)]
    if method == "delong":
        return _delong_cov(ker, keys)
    return _unbiased_cov(ker, keys)


def _delong_cov(ker, keys) -> np.ndarray:
    """DeLong structural components; with partly shared cases, sum over the shared ones only."""
    n = len(keys)
    comps = {}
    for key in keys:
        S, neg, pos = ker[key]
        theta = S.mean()
        comps[key] = (
            dict(zip(pos.tolist(), S.mean(axis=0) - theta)),  # V10 per positive case
            dict(zip(neg.tolist(), S.mean(axis=1) - theta)),  # V01 per negative case
            len(pos), len(neg),
        )
    cov = np.zeros((n, n))
    for a in range(n):
        for b in range(a, n):
            ca, cb = comps[keys[a]], comps[keys[b]]
            total = 0.0
            for stratum, size in ((0, 2), (1, 3)):
                shared = sorted(set(ca[stratum]) & set(cb[stratum]))
                if len(shared) > 1:
                    va = np.array([ca[stratum][k] for k in shared])
                    vb = np.array([cb[stratum][k] for k in shared])
                    total += len(shared) * (va @ vb) / (len(shared) - 1) / (ca[size] * cb[size])
            cov[a, b] = cov[b, a] = total
    return cov


def _unbiased_cov(ker, keys) -> np.ndarray:
    """Gallas (2006): unbiased estimates of the four U-statistic moments, combined exactly."""
    n = len(keys)
    cov = np.zeros((n, n))
    for a in range(n):
        Sa = ker[keys[a]][0]
        n0, n1 = Sa.shape
        ra, ca_, ta = Sa.sum(axis=1), Sa.sum(axis=0), Sa.sum()
        for b in range(a, n):
            Sb = ker[keys[b]][0]
            rb, cb, tb = Sb.sum(axis=1), Sb.sum(axis=0), Sb.sum()
            a1 = (Sa * Sb).sum()  # same negative, same positive
            a2 = ra @ rb - a1  # same negative, different positives
            a3 = ca_ @ cb - a1  # different negatives, same positive
            a4 = ta * tb - a1 - a2 - a3  # all different
            m1 = a1 / (n0 * n1)
            m2 = a2 / (n0 * n1 * (n1 - 1))
            m3 = a3 / (n0 * (n0 - 1) * n1)
            m4 = a4 / (n0 * (n0 - 1) * n1 * (n1 - 1))
            c1, c2, c3 = 1 / (n0 * n1), (n1 - 1) / (n0 * n1), (n0 - 1) / (n0 * n1)
            c4 = (n0 - 1) * (n1 - 1) / (n0 * n1)
            cov[a, b] = cov[b, a] = c1 * m1 + c2 * m2 + c3 * m3 + (c4 - 1) * m4
    return cov


def or_covariances(cov: np.ndarray, T: int, R: int) -> dict[str, float]:
    """Average the AUC covariance matrix into OR's Var, Cov1, Cov2, Cov3."""
    c = cov.reshape(T, R, T, R)
    same_t = np.eye(T, dtype=bool)[:, None, :, None]
    same_r = np.eye(R, dtype=bool)[None, :, None, :]
    pick = lambda m: float(c[np.broadcast_to(m, c.shape)].mean())  # noqa: E731
    return {
        "var": pick(same_t & same_r),
        "cov1": pick(~same_t & same_r),
        "cov2": pick(same_t & ~same_r),
        "cov3": pick(~same_t & ~same_r),
    }


# --------------------------------------------------------------------------------------------
# Obuchowski–Rockette with Hillis' degrees of freedom


def _ratio(num: float, den: float) -> float:
    """num/den; a zero denominator (no variance at all, e.g. identical readers) gives nan, not a crash."""
    return float(num / den) if den > 0 else float("nan")


def _mean_squares(theta: np.ndarray) -> dict[str, float]:
    T, R = theta.shape
    m = theta.mean()
    mt, mr = theta.mean(axis=1), theta.mean(axis=0)
    return {
        "ms_t": R * ((mt - m) ** 2).sum() / (T - 1),
        "ms_r": T * ((mr - m) ** 2).sum() / (R - 1),
        "ms_tr": ((theta - mt[:, None] - mr[None, :] + m) ** 2).sum() / ((T - 1) * (R - 1)),
    }


def _pairwise(theta_t: np.ndarray, treatments: list, se: float, df_: float, alpha: float, dist: str) -> list[dict]:
    out = []
    q = stats.t.ppf(1 - alpha / 2, df_) if dist == "t" else stats.norm.ppf(1 - alpha / 2)
    for i in range(len(treatments)):
        for j in range(i + 1, len(treatments)):
            d = float(theta_t[i] - theta_t[j])
            stat = d / se if se > 0 else float("nan")
            p = 2 * (stats.t.sf(abs(stat), df_) if dist == "t" else stats.norm.sf(abs(stat)))
            out.append({
                "treatments": [treatments[i], treatments[j]], "difference": d, "se": float(se), "df": float(df_),
                "ci_low": d - q * se, "ci_high": d + q * se, "statistic": float(stat), "p": float(p),
            })
    return out


def single_treatment_ci(theta_r: np.ndarray, cov_rr: np.ndarray, alpha: float = 0.05) -> dict[str, float]:
    """CI for one treatment's reader-averaged AUC, readers and cases random (Hillis 2007).

    SE^2 = (MS(R) + R max(Cov2, 0)) / R with df = (MS(R) + R max(Cov2, 0))^2 / (MS(R)^2 / (R-1)).
    With one reader only the case variance remains: a normal interval from ``cov_rr``.
    """
    theta_r = np.asarray(theta_r, float)
    R = len(theta_r)
    m = float(theta_r.mean())
    if R == 1:
        se = float(np.sqrt(max(cov_rr[0, 0], 0.0)))
        q = stats.norm.ppf(1 - alpha / 2)
        return {"auc": m, "se": se, "df": float("inf"), "ci_low": m - q * se, "ci_high": m + q * se}
    ms_r = float(((theta_r - m) ** 2).sum() / (R - 1))
    cov2 = float(cov_rr[~np.eye(R, dtype=bool)].mean())
    d = ms_r + R * max(cov2, 0.0)
    df_ = d**2 / (ms_r**2 / (R - 1)) if ms_r > 0 else float("inf")
    se = float(np.sqrt(d / R))
    q = stats.t.ppf(1 - alpha / 2, df_)
    return {"auc": m, "se": se, "df": float(df_), "ci_low": m - q * se, "ci_high": m + q * se}


def or_analysis(theta: np.ndarray, cov: np.ndarray, treatments: list, alpha: float = 0.05) -> dict[str, Any]:
    """OR analysis: random readers & cases (Hillis ddf), fixed readers, fixed cases; CIs per treatment."""
    T, R = theta.shape
    ms = _mean_squares(theta)
    cv = or_covariances(cov, T, R)
    theta_t = theta.mean(axis=1)
    constraint = cv["cov2"] - cv["cov3"] < 0
    c23 = max(cv["cov2"] - cv["cov3"], 0.0)

    # random readers and random cases
    den = ms["ms_tr"] + R * c23
    F = _ratio(ms["ms_t"], den)
    ddf = den**2 / (ms["ms_tr"] ** 2 / ((T - 1) * (R - 1))) if ms["ms_tr"] > 0 else float("inf")
    rrrc = {
        "F": F, "ndf": T - 1, "ddf": ddf, "p": float(stats.f.sf(F, T - 1, ddf)),
        "pairwise": _pairwise(theta_t, treatments, np.sqrt(2 * den / R), ddf, alpha, "t"),
        "single": [],
    }
    cov4 = cov.reshape(T, R, T, R)
    for t in range(T):
        ci = single_treatment_ci(theta[t], cov4[t, :, t, :], alpha)
        rrrc["single"].append({"treatment": treatments[t], **ci})

    # fixed readers, random cases
    den_f = cv["var"] - cv["cov1"] + (R - 1) * c23
    chi2 = _ratio((T - 1) * ms["ms_t"], den_f)
    frrc = {
        "chi2": chi2, "df": T - 1, "p": float(stats.chi2.sf(chi2, T - 1)),
        "pairwise": _pairwise(theta_t, treatments, np.sqrt(2 * den_f / R), np.inf, alpha, "z"),
    }

    # random readers, fixed cases
    F_c = _ratio(ms["ms_t"], ms["ms_tr"])
    rrfc = {
        "F": F_c, "ndf": T - 1, "ddf": (T - 1) * (R - 1), "p": float(stats.f.sf(F_c, T - 1, (T - 1) * (R - 1))),
        "pairwise": _pairwise(theta_t, treatments, np.sqrt(2 * ms["ms_tr"] / R), (T - 1) * (R - 1), alpha, "t"),
    }
    return {
        "auc_means": theta_t.tolist(), "mean_squares": ms, "covariances": cv,
        "constraint_active": bool(constraint),
        "random_readers_random_cases": rrrc, "fixed_readers_random_cases": frrc, "random_readers_fixed_cases": rrfc,
    }


# --------------------------------------------------------------------------------------------
# Dorfman–Berbaum–Metz on jackknife pseudovalues


def pseudovalues(data: MRMCData) -> np.ndarray:
    """Jackknife pseudovalues K*theta - (K-1)*theta_(k): shape (T, R, K)."""
    K = data.ratings.shape[2]
    return K * auc_matrix(data)[:, :, None] - (K - 1) * jackknife_aucs(data)


def dbm_mean_squares(Y: np.ndarray) -> dict[str, float]:
    """Mean squares of the three-way (treatment x reader x case) ANOVA without replication."""
    T, R, K = Y.shape
    m = Y.mean()
    mt, mr, mc = Y.mean(axis=(1, 2)), Y.mean(axis=(0, 2)), Y.mean(axis=(0, 1))
    mtr, mtc, mrc = Y.mean(axis=2), Y.mean(axis=1), Y.mean(axis=0)
    ss = {
        "t": R * K * ((mt - m) ** 2).sum(),
        "r": T * K * ((mr - m) ** 2).sum(),
        "c": T * R * ((mc - m) ** 2).sum(),
        "tr": K * ((mtr - mt[:, None] - mr[None, :] + m) ** 2).sum(),
        "tc": R * ((mtc - mt[:, None] - mc[None, :] + m) ** 2).sum(),
        "rc": T * ((mrc - mr[:, None] - mc[None, :] + m) ** 2).sum(),
    }
    resid = Y - mtr[:, :, None] - mtc[:, None, :] - mrc[None, :, :] + mt[:, None, None] + mr[None, :, None] + mc[None, None, :] - m
    ss["trc"] = (resid**2).sum()
    df = {"t": T - 1, "r": R - 1, "c": K - 1, "tr": (T - 1) * (R - 1), "tc": (T - 1) * (K - 1),
          "rc": (R - 1) * (K - 1), "trc": (T - 1) * (R - 1) * (K - 1)}
    return {k: float(ss[k] / df[k]) for k in ss}


def dbm_analysis(data: MRMCData, alpha: float = 0.05) -> dict[str, Any]:
    """DBM test (random readers and cases) with Hillis' ddf and the max(MS(TC) - MS(TRC), 0) constraint."""
    if not data.fully_crossed:
        raise InputError("DBM needs every case in every treatment, but this design is nested", "use the OR analysis with --cov delong")
    T, R, K = data.ratings.shape
    ms = dbm_mean_squares(pseudovalues(data))
    den = ms["tr"] + max(ms["tc"] - ms["trc"], 0.0)
    F = _ratio(ms["t"], den)
    ddf = den**2 / (ms["tr"] ** 2 / ((T - 1) * (R - 1))) if ms["tr"] > 0 else float("inf")
    return {"mean_squares": ms, "F": F, "ndf": T - 1, "ddf": ddf, "p": float(stats.f.sf(F, T - 1, ddf)),
            "constraint_active": bool(ms["tc"] < ms["trc"])}


# --------------------------------------------------------------------------------------------


@dataclass
class MRMCResult:
    method: str
    cov: str
    treatments: list
    readers: list
    n_cases: int
    n_positive: int
    n_negative: int
    nested: bool
    auc: list  # [treatment][reader]
    obuchowski_rockette: dict
    dbm: dict | None = None
    extras: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return _plain(asdict(self))


def _plain(x):
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def mrmc(df: pd.DataFrame, cov: str = "jackknife", alpha: float = 0.05, source: str = "ratings") -> MRMCResult:
    """Full MRMC analysis of a long table ``reader, treatment, case, truth, rating``."""
    data = prepare(df, source)
    theta = auc_matrix(data)
    c = auc_covariance(data, cov)
    orr = or_analysis(theta, c, data.treatments, alpha)
    dbm = dbm_analysis(data, alpha) if data.fully_crossed else None
    return MRMCResult(
        method="obuchowski-rockette/hillis", cov=cov, treatments=data.treatments, readers=data.readers,
        n_cases=len(data.cases), n_positive=int((data.truth == 1).sum()), n_negative=int((data.truth == 0).sum()),
        nested=not data.fully_crossed, auc=theta.tolist(), obuchowski_rockette=orr, dbm=dbm,
    )


def read_ratings_csv(path) -> pd.DataFrame:
    """Read a long-format ratings CSV with a one-line error for an unreadable file."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise InputError(f"ratings file {path} does not exist", "give a CSV with columns reader,treatment,case,truth,rating")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not a readable CSV ({type(exc).__name__})", "save it as comma-separated UTF-8 text") from None


def format_result(res: MRMCResult) -> str:
    """A short plain-text summary, like the Iowa OR-DBM MRMC output."""
    o = res.obuchowski_rockette
    r = o["random_readers_random_cases"]
    lines = [
        f"MRMC: {len(res.readers)} readers, {len(res.treatments)} treatments, {res.n_cases} cases "
        f"({res.n_positive} positive, {res.n_negative} negative){', nested design' if res.nested else ''}; covariance: {res.cov}",
        "AUC per treatment: " + ", ".join(f"{t}={a:.5f}" for t, a in zip(res.treatments, o["auc_means"])),
        "OR covariances: " + ", ".join(f"{k}={v:.8f}" for k, v in o["covariances"].items())
        + (" (Cov2 < Cov3: constraint active)" if o["constraint_active"] else ""),
        f"Random readers & cases (Hillis): F={r['F']:.4f}, df=({r['ndf']}, {r['ddf']:.2f}), p={r['p']:.4f}",
    ]
    for pw in r["pairwise"]:
        lines.append(f"  {pw['treatments'][0]} - {pw['treatments'][1]}: {pw['difference']:.5f} (SE {pw['se']:.5f}), "
                     f"95% CI ({pw['ci_low']:.5f}, {pw['ci_high']:.5f})")
    f = o["fixed_readers_random_cases"]
    c = o["random_readers_fixed_cases"]
    lines.append(f"Fixed readers, random cases: chi2={f['chi2']:.5f}, df={f['df']}, p={f['p']:.4f}")
    lines.append(f"Random readers, fixed cases: F({c['ndf']},{c['ddf']})={c['F']:.4f}, p={c['p']:.4f}")
    if res.dbm:
        d = res.dbm
        lines.append(f"DBM: F={d['F']:.4f}, df=({d['ndf']}, {d['ddf']:.2f}), p={d['p']:.4f}")
    return "\n".join(lines)
