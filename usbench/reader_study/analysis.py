"""Reader statistics of a study: detection of synthetic images, fool rates, MRMC, agreement.

Conventions (documented in docs/reader_study.md):

* rating 1 = definitely real … 5 = definitely synthetic; "positive" = synthetic.
* A binary call is "synthetic" for 4–5 and "real" for 1–2; a 3 ("unsure") counts as half a call
  each way (as a coin flip would). The binomial test against chance uses the decisive answers only.
* Fool rate of a generator (HYPE-infinity style): share of its synthetic images a reader called
  real (3 counts half), averaged over readers; interval by a two-way (readers x cases) bootstrap.
* Reader AUC of a generator: empirical AUC of the ratings for its synthetic images against all
  real images (0.5 = indistinguishable), averaged over readers; interval and the comparison of
  generators by Obuchowski–Rockette/Hillis with DeLong covariances on the nested design (real
  cases shared by all generators, synthetic cases nested in their generator).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from usbench.errors import ConfigError, InputError, NotEnoughImagesError
from usbench.imageset import atomic_write_bytes, atomic_write_text
from usbench.reader_study import agreement as agr
from usbench.reader_study import mrmc as M
from usbench.reader_study.builder import REAL, open_store, read_config, read_key

LONG_COLUMNS = ("reader", "case", "source", "generator", "label", "rating", "seconds", "order", "timestamp")
ANSWER_COLUMNS = ("first_rating", "first_comment", "first_seconds", "first_timestamp", "revisions")
DETAIL_COLUMNS = ("reader_role", "reader_years", "reader_us_volume")
MIN_CASES_PER_CLASS = 3  # --partial refuses a generator with fewer finished real or synthetic cases


# --------------------------------------------------------------------------------------------
# Loading


def _when(t) -> str:
    return pd.Timestamp(t, unit="s", tz="UTC").isoformat() if t is not None else ""


def _details(store) -> dict[str, dict]:
    out = {}
    for r in store.reader_table():
        d = json.loads(r["details"]) if r["details"] else {}
        out[r["reader"]] = {"reader_role": d.get("role", ""), "reader_years": d.get("years", ""), "reader_us_volume": d.get("us_volume", "")}
    return out


def _answers(study: Path) -> tuple[list[dict], dict[str, dict], dict[str, dict]]:
    study = Path(study)
    key = {r["image_id"]: r for r in read_key(study)}
    store = open_store(study)
    try:
        rows, details = store.all_ratings(), _details(store)
    finally:
        store.close()
    for r in rows:
        for iid in (r["image_id"], r.get("image_id_b")):
            if iid and iid not in key:
                raise InputError(f"image {iid} is rated but not in admin/key.csv", "the key does not belong to this study")
    return rows, key, details


def load_long(study: Path) -> pd.DataFrame:
    """Every current 5-point rating joined with the key: one row per (reader, item), all blocks.

    ``case`` is the study case (a repeat carries the id of its first showing); ``first_*`` is the
    reader's first answer to the item, ``rating``/``comment`` the final one, ``revisions`` how often
    it changed. Extra questions become ``q_<key>`` columns, the reader-details form ``reader_*``.
    """
    rows, key, details = _answers(study)
    out = []
    for r in rows:
        if r["task"] != "rate":
            continue
        k = key[r["image_id"]]
        extras = json.loads(r["extras"] or "{}")
        out.append({
            "reader": r["reader"], "case": k.get("repeat_of") or r["image_id"], "item": r["item"], "block": r["block"],
            "source": k["source"], "generator": k["generator"], "truth": k["truth"], "label": k["label"],
            "rating": int(r["rating"]), "comment": r["comment"], "seconds": r["seconds"], "order": int(r["position"]),
            "timestamp": _when(r["rated_at"]), "first_rating": int(r["first_rating"]), "first_comment": r["first_comment"],
            "first_seconds": r["first_seconds"], "first_timestamp": _when(r["first_rated_at"]), "revisions": int(r["revisions"]),
            **details.get(r["reader"], {}), **{f"q_{q}": v for q, v in extras.items()},
        })
    cols = list(LONG_COLUMNS) + ["item", "block", "truth", "comment", *ANSWER_COLUMNS, *DETAIL_COLUMNS]
    df = pd.DataFrame(out)
    extra_cols = sorted(c for c in df.columns if c.startswith("q_"))
    return df.reindex(columns=cols + extra_cols)


def load_afc(study: Path) -> pd.DataFrame:
    """Every current 2AFC answer: which side the reader called real, and whether that was the real image."""
    rows, key, details = _answers(study)
    out = []
    for r in rows:
        if r["task"] != "2afc":
            continue
        left, right = key[r["image_id"]], key[r["image_id_b"]]
        real_side = 1 if left["truth"] == 0 else 2
        syn = right if real_side == 1 else left
        out.append({"reader": r["reader"], "pair": r["item"], "generator": syn["generator"], "label": syn["label"],
                    "real_side": "left" if real_side == 1 else "right", "answer": "left" if r["rating"] == 1 else "right",
                    "correct": int(r["rating"] == real_side), "first_correct": int(r["first_rating"] == real_side),
                    "revisions": int(r["revisions"]), "seconds": r["seconds"], "order": int(r["position"]),
                    "timestamp": _when(r["rated_at"]), "comment": r["comment"], **details.get(r["reader"], {})})
    return pd.DataFrame(out, columns=["reader", "pair", "generator", "label", "real_side", "answer", "correct", "first_correct",
                                      "revisions", "seconds", "order", "timestamp", "comment", *DETAIL_COLUMNS])


# --------------------------------------------------------------------------------------------
# Binary detection statistics


def called_synthetic(ratings) -> np.ndarray:
    r = np.asarray(ratings, float)
    return (r >= 4) + 0.5 * (r == 3)


def detection_stats(ratings: Sequence[int], truth: Sequence[int], alpha: float = 0.05) -> dict[str, Any]:
    """Accuracy, sensitivity, specificity (positive = synthetic), binomial test, AUC with DeLong CI."""
    from statsmodels.stats.proportion import proportion_confint

    r, t = np.asarray(ratings, float), np.asarray(truth, int)
    call = called_synthetic(r)
    correct = np.where(t == 1, call, 1 - call)
    decisive = r != 3
    k, n = int(correct[decisive].sum()), int(decisive.sum())
    out: dict[str, Any] = {"n": int(len(r)), "n_synthetic": int((t == 1).sum()), "n_real": int((t == 0).sum())}

    def prop(name, values):
        m = float(values.mean()) if len(values) else float("nan")
        lo, hi = proportion_confint(m * len(values), len(values), alpha, method="wilson") if len(values) else (math.nan, math.nan)
        out[name], out[f"{name}_ci_low"], out[f"{name}_ci_high"] = m, float(lo), float(hi)

    prop("accuracy", correct)
    prop("sensitivity", call[t == 1])
    prop("specificity", 1 - call[t == 0])
    out["binomial_k"], out["binomial_n"] = k, n
    out["binomial_p"] = float(stats.binomtest(k, n, 0.5, alternative="greater").pvalue) if n else float("nan")
    out.update(auc_with_ci(r, t, alpha))
    return out


def auc_with_ci(ratings, truth, alpha: float = 0.05) -> dict[str, float]:
    """Empirical AUC with a DeLong normal interval (clipped to [0, 1])."""
    r, t = np.asarray(ratings, float), np.asarray(truth, int)
    pos, neg = r[t == 1], r[t == 0]
    if len(pos) == 0 or len(neg) == 0:
        return {"auc": float("nan"), "auc_ci_low": float("nan"), "auc_ci_high": float("nan")}
    S = (pos[None, :] > neg[:, None]) + 0.5 * (pos[None, :] == neg[:, None])
    auc = float(S.mean())
    var = (S.mean(axis=0).var(ddof=1) / len(pos) if len(pos) > 1 else 0.0) + (S.mean(axis=1).var(ddof=1) / len(neg) if len(neg) > 1 else 0.0)
    q = stats.norm.ppf(1 - alpha / 2)
    return {"auc": auc, "auc_ci_low": max(auc - q * math.sqrt(var), 0.0), "auc_ci_high": min(auc + q * math.sqrt(var), 1.0)}


def fool_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """Readers x synthetic cases: 1 when called real, 0.5 when unsure, 0 when called synthetic."""
    syn = df[df["truth"] == 1]
    return syn.assign(fooled=1 - called_synthetic(syn["rating"])).pivot_table(index="reader", columns="case", values="fooled")


def fool_rate(df: pd.DataFrame, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> dict[str, float]:
    """Mean over readers of each reader's fool rate; two-way bootstrap (readers and cases) interval."""
    m = fool_matrix(df)
    values = m.to_numpy(float)
    point = float(np.nanmean(np.nanmean(values, axis=1)))
    rng = np.random.default_rng(seed)
    R, K = values.shape
    boots = np.empty(n_boot)
    for b in range(n_boot):
        sub = values[rng.integers(R, size=R)][:, rng.integers(K, size=K)]
        with np.errstate(invalid="ignore"):
            boots[b] = np.nanmean(np.nanmean(sub, axis=1))
    lo, hi = np.nanquantile(boots, [alpha / 2, 1 - alpha / 2])
    return {"fool_rate": point, "fool_rate_ci_low": float(lo), "fool_rate_ci_high": float(hi), "n_boot": n_boot, "seed": seed}


# --------------------------------------------------------------------------------------------
# The study analysis


def mrmc_table(main: pd.DataFrame) -> pd.DataFrame:
    """Long MRMC table of the nested design: treatment = generator; real cases repeated in every treatment."""
    real = main[main["source"] == REAL]
    parts = []
    for g in sorted(main.loc[main["source"] != REAL, "generator"].unique()):
        syn = main[main["generator"] == g]
        parts.append(pd.concat([real, syn]).assign(treatment=g))
    if not parts:
        return pd.DataFrame(columns=list(M.REQUIRED_COLUMNS))
    t = pd.concat(parts)
    return t[["reader", "treatment", "case", "truth", "rating"]].reset_index(drop=True)


def _data_for(table: pd.DataFrame) -> M.MRMCData:
    """MRMCData without the >=2 readers/treatments rule (for per-generator intervals)."""
    readers = sorted(table["reader"].astype(str).unique())
    treatments = sorted(table["treatment"].astype(str).unique())
    cases = sorted(table["case"].astype(str).unique())
    ri, ti, ki = ({v: i for i, v in enumerate(x)} for x in (readers, treatments, cases))
    y = np.full((len(treatments), len(readers), len(cases)), np.nan)
    y[table["treatment"].astype(str).map(ti), table["reader"].astype(str).map(ri), table["case"].astype(str).map(ki)] = table["rating"]
    truth = table.groupby(table["case"].astype(str))["truth"].first().reindex(cases).to_numpy(int)
    present = ~np.isnan(y).all(axis=1)
    if (present[:, None, :] & np.isnan(y)).any():
        raise InputError("some readers have not rated every case yet", "analyse when all readers are done, or use --partial")
    return M.MRMCData(treatments, readers, cases, truth, y, present)


def _active_readers(study: Path, main: pd.DataFrame) -> int:
    """Readers a partial analysis waits for: all of the study's, except revoked ones who rated nothing."""
    with open_store(study) as s:
        table = s.reader_table()
    rated = set(main["reader"])
    return sum(1 for r in table if r["revoked_at"] is None or r["reader"] in rated)


def _partial_cases(main: pd.DataFrame, n_readers: int) -> pd.DataFrame:
    """Only the cases every reader of the study has rated; refuse when a generator is left with too few."""
    counts = main.groupby("case")["reader"].nunique()
    kept = main[main["case"].isin(counts[counts == n_readers].index)]
    real_cases = kept.loc[kept["truth"] == 0, "case"].nunique()
    for g in sorted(main.loc[main["truth"] == 1, "generator"].unique()):
        syn_cases = kept.loc[kept["generator"] == g, "case"].nunique()
        if min(real_cases, syn_cases) < MIN_CASES_PER_CLASS:
            raise NotEnoughImagesError(
                f"only {real_cases} real and {syn_cases} {g} cases have been rated by all {n_readers} readers; "
                f"a partial analysis needs at least {MIN_CASES_PER_CLASS} of each",
                "wait for more ratings (see `usbench study progress`)")
    return kept


def analyze(study: Path, cov: str = "delong", n_boot: int = 2000, seed: int = 0, alpha: float = 0.05,
            partial: bool = False) -> dict[str, Any]:
    """All reader statistics of a study as one JSON-able dict.

    ``cov`` is used as asked or refused: the jackknife and unbiased covariances need every case in
    every treatment, which a study of two or more generators (synthetic cases nested in their
    generator) is not. ``partial`` analyses the cases every reader has rated, and refuses when a
    generator has fewer than ``MIN_CASES_PER_CLASS`` real or synthetic ones.
    """
    study = Path(study)
    if cov not in M.COV_METHODS:
        raise ConfigError(f"unknown covariance method {cov!r}", f"choose one of {', '.join(M.COV_METHODS)}")
    config = read_config(study)
    df = load_long(study)
    main = df[df["block"] == "main"]
    if main.empty:
        raise NotEnoughImagesError(f"the study {study} has no ratings yet", "wait for readers to rate, then analyse")
    if partial:
        main = _partial_cases(main, _active_readers(study, main))
    out: dict[str, Any] = {
        "study": str(study), "study_id": config.get("study_id", ""), "title": config.get("title", ""),
        "n_readers": int(main["reader"].nunique()), "n_cases": int(main["case"].nunique()), "n_ratings": int(len(main)),
        "cov": cov, "alpha": alpha, "seed": seed, "partial": bool(partial),
        "scale": "1 definitely real ... 5 definitely synthetic; positive = synthetic; 3 counts half",
    }
    out["per_reader"] = {r: detection_stats(g["rating"], g["truth"], alpha) | {"median_seconds": _median(g["seconds"]),
                                                                             "revised": int((g["revisions"] > 0).sum())}
                         for r, g in main.groupby("reader")}

    table = mrmc_table(main)
    data = _data_for(table) if len(table) else None
    if data is not None and not data.fully_crossed and cov != "delong":
        raise ConfigError(f"--cov {cov} needs every case in every treatment, but this study is nested "
                          f"({len(data.treatments)} generators, each with its own synthetic cases)",
                          "use --cov delong (the default), or analyse one generator per study")
    per_gen: dict[str, Any] = {}
    if data is not None:
        theta = M.auc_matrix(data)
        covm = M.auc_covariance(data, cov)
        T, R = theta.shape
        c4 = covm.reshape(T, R, T, R)
        for t, g in enumerate(data.treatments):
            sub = main[(main["generator"] == g) | (main["source"] == REAL)]
            ci = M.single_treatment_ci(theta[t], c4[t, :, t, :], alpha)
            per_gen[g] = {
                "reader_auc": ci["auc"], "reader_auc_ci_low": max(ci["ci_low"], 0.0), "reader_auc_ci_high": min(ci["ci_high"], 1.0),
                "reader_auc_df": ci["df"], "auc_per_reader": dict(zip(data.readers, theta[t].tolist())),
                "case_variance": float(np.mean(np.diag(c4[t, :, t, :]))),  # mean over readers, by the --cov estimator
                **fool_rate(sub, n_boot, seed, alpha),
                "fool_rate_per_reader": fool_matrix(sub).mean(axis=1).to_dict(),
                "fool_rate_per_label": {lab: float(fool_matrix(sub[sub["label"] == lab]).mean(axis=1).mean())
                                        for lab in sorted(sub.loc[sub["generator"] == g, "label"].unique())},
                "n_readers": R, "n_cases": int(data.present[t].sum()), "n_synthetic": int((data.present[t] & (data.truth == 1)).sum()),
            }
        if T >= 2 and R >= 2:
            orr = M.or_analysis(theta, covm, data.treatments, alpha)
            out["mrmc"] = {"method": "obuchowski-rockette/hillis", "cov": cov,
                           "design": "nested (real cases shared, synthetic cases nested in generators)" if not data.fully_crossed
                           else "fully crossed", **orr}
        # every generator together, as one treatment: readers and cases random (no ratings pooled as if independent)
        all_syn = main.assign(treatment="all generators")[["reader", "treatment", "case", "truth", "rating"]]
        d_all = _data_for(all_syn)
        th_all = M.auc_matrix(d_all)
        ci = M.single_treatment_ci(th_all[0], M.auc_covariance(d_all, cov), alpha)
        out["all_generators"] = {"reader_auc": ci["auc"], "reader_auc_ci_low": max(ci["ci_low"], 0.0),
                                 "reader_auc_ci_high": min(ci["ci_high"], 1.0), "reader_auc_df": ci["df"],
                                 "method": "Hillis single-treatment interval (readers and cases random)", **fool_rate(main, n_boot, seed, alpha)}
    out["per_generator"] = per_gen
    out["agreement"] = agr.agreement(main) if main["reader"].nunique() >= 2 and main["case"].nunique() >= 2 else {}
    rep = df[df["block"] == "repeat"]
    if not rep.empty:
        first = main.set_index(["reader", "case"])["rating"]
        pairs = rep.assign(first=[first.get((r, c), np.nan) for r, c in zip(rep["reader"], rep["case"])], second=rep["rating"]).dropna(subset=["first"])
        out["intra_reader"] = agr.intra_reader(pairs)
    afc = load_afc(study)
    if not afc.empty:
        out["afc"] = afc_stats(afc, n_boot, seed, alpha)
    practice = df[df["block"] == "practice"]
    out["n_practice_ratings_excluded"] = int(len(practice))
    return M._plain(out)


def afc_stats(afc: pd.DataFrame, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> dict[str, Any]:
    """2AFC per generator: share of pairs where the reader picked the real image (0.5 = chance),
    averaged over readers with a two-way (readers x pairs) bootstrap interval; exact binomial test per reader."""
    out = {}
    for g, sub in afc.groupby("generator"):
        m = sub.pivot_table(index="reader", columns="pair", values="correct")
        values = m.to_numpy(float)
        rng = np.random.default_rng(seed)
        R, K = values.shape
        boots = np.array([np.nanmean(np.nanmean(values[rng.integers(R, size=R)][:, rng.integers(K, size=K)], axis=1)) for _ in range(n_boot)])
        lo, hi = np.nanquantile(boots, [alpha / 2, 1 - alpha / 2])
        per_reader = {}
        for r, x in sub.groupby("reader"):
            k, n = int(x["correct"].sum()), int(len(x))
            per_reader[r] = {"correct": k, "n": n, "p_binomial": float(stats.binomtest(k, n, 0.5, alternative="greater").pvalue),
                             "median_seconds": _median(x["seconds"])}
        out[g] = {"accuracy": float(np.nanmean(np.nanmean(values, axis=1))), "accuracy_ci_low": float(lo), "accuracy_ci_high": float(hi),
                  "first_answer_accuracy": float(sub.groupby("reader")["first_correct"].mean().mean()),
                  "n_readers": int(R), "n_pairs": int(K), "per_reader": per_reader}
    return out


def own_result(study: Path, reader: str) -> str:
    """A finished reader's own result (Markdown), for the end page of a study that shows it."""
    df = load_long(study)
    main = df[(df["block"] == "main") & (df["reader"] == reader)]
    lines = []
    if len(main):
        s = detection_stats(main["rating"], main["truth"])
        lines.append(f"**Your result**: accuracy {s['accuracy']:.0%} on {s['n']} images (50 % is chance; 'unsure' counts half); "
                     f"synthetic images recognised {s['sensitivity']:.0%}, real images recognised {s['specificity']:.0%}; AUC {s['auc']:.2f}.")
    afc = load_afc(study)
    afc = afc[afc["reader"] == reader]
    if len(afc):
        lines.append(f"In the pairs you picked the real image {int(afc['correct'].sum())} times out of {len(afc)}.")
    return "\n\n".join(lines)


def _median(s) -> float:
    s = pd.to_numeric(s, errors="coerce").dropna()
    return float(s.median()) if len(s) else float("nan")


# --------------------------------------------------------------------------------------------
# Leaderboard integration


def leaderboard_columns(study_dir: Path) -> dict[str, dict[str, float | int | str]]:
    """run_id → reader columns for the leaderboard.

    Uses the study's own ``analysis.json`` (written by ``usbench study analyze``): one that carries
    another study's id (a copied file) is refused. Without it, analyses the cases every reader has
    finished so far (``partial``).
    """
    study_dir = Path(study_dir)
    path = study_dir / "analysis.json"
    if path.is_file():
        try:
            res = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise InputError(f"{path} is not valid JSON", "rerun `usbench study analyze`") from None
        own = read_config(study_dir).get("study_id", "")
        if not own or res.get("study_id") != own:
            raise InputError(f"{path} does not belong to the study in {study_dir} (study_id {res.get('study_id')!r}, expected {own!r})",
                             "rerun `usbench study analyze` on this study")
    else:
        res = analyze(study_dir, partial=True)
    cols = {}
    for run_id, g in res.get("per_generator", {}).items():
        cols[run_id] = {
            "reader_fool_rate": g["fool_rate"], "reader_fool_rate_ci_low": g["fool_rate_ci_low"],
            "reader_fool_rate_ci_high": g["fool_rate_ci_high"], "reader_auc": g["reader_auc"],
            "reader_auc_ci_low": g["reader_auc_ci_low"], "reader_auc_ci_high": g["reader_auc_ci_high"],
            "reader_n_readers": int(g["n_readers"]), "reader_n_cases": int(g["n_cases"]),
        }
    return cols


def spearman_vs_metrics(leaderboard_rows: list[dict], metric_columns: Iterable[str],
                        human_column: str = "reader_fool_rate") -> list[dict]:
    """Spearman correlation across generators between each automated metric and the human score."""
    out = []
    for metric in metric_columns:
        pairs = [(float(r[metric]), float(r[human_column])) for r in leaderboard_rows
                 if _finite(r.get(metric)) and _finite(r.get(human_column))]
        if len(pairs) >= 3:
            rho, p = stats.spearmanr(*zip(*pairs))
            rho, p = float(rho), float(p)
        else:
            rho = p = float("nan")
        out.append({"metric": metric, "human": human_column, "rho": rho, "p": p, "n": len(pairs)})
    return out


def _finite(v) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def scatter_metric_vs_human(leaderboard_rows: list[dict], metric: str, out: Path, human_column: str = "reader_fool_rate",
                            label_column: str = "run_id") -> Path:
    """Scatter plot of one metric against the human realism score, one point per generator (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in leaderboard_rows if _finite(r.get(metric)) and _finite(r.get(human_column))]
    fig, ax = plt.subplots(figsize=(4.5, 3.6), dpi=120)
    xs = [float(r[metric]) for r in rows]
    ys = [float(r[human_column]) for r in rows]
    lo = [float(r.get(f"{human_column}_ci_low", y)) for r, y in zip(rows, ys)]
    hi = [float(r.get(f"{human_column}_ci_high", y)) for r, y in zip(rows, ys)]
    ax.errorbar(xs, ys, yerr=[np.subtract(ys, lo), np.subtract(hi, ys)], fmt="o", capsize=3)
    for x, y, r in zip(xs, ys, rows):
        ax.annotate(str(r.get(label_column, "")), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    rho = spearman_vs_metrics(rows, [metric], human_column)[0]
    ax.set_xlabel(metric)
    ax.set_ylabel(human_column)
    ax.set_title(f"Spearman rho = {rho['rho']:.2f} (n={rho['n']})", fontsize=9)
    fig.tight_layout()
    _save_fig(fig, Path(out))
    return Path(out)


def _save_fig(fig, out: Path) -> None:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())


# --------------------------------------------------------------------------------------------
# Writing the results


def plots(study: Path, res: dict) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    study = Path(study)
    made = []
    gens = list(res.get("per_generator", {}))
    if gens:
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), dpi=120)
        for ax, key, title in ((axes[0], "fool_rate", "fool rate (share of synthetic called real)"),
                               (axes[1], "reader_auc", "reader AUC (0.5 = indistinguishable)")):
            v = [res["per_generator"][g][key] for g in gens]
            lo = [res["per_generator"][g][f"{key}_ci_low"] for g in gens]
            hi = [res["per_generator"][g][f"{key}_ci_high"] for g in gens]
            ax.bar(range(len(gens)), v, yerr=[np.subtract(v, lo), np.subtract(hi, v)], capsize=4, color="#6a8caf")
            ax.set_xticks(range(len(gens)), gens, rotation=20, fontsize=7)
            ax.set_ylim(0, 1)
            ax.axhline(0.5, color="k", lw=0.6, ls="--")
            ax.set_title(title, fontsize=9)
        fig.tight_layout()
        _save_fig(fig, study / "analysis_generators.png")
        made.append(study / "analysis_generators.png")
    df = load_long(study)
    main = df[df["block"] == "main"]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    groups = [REAL] + gens
    width = 0.8 / max(len(groups), 1)
    for i, g in enumerate(groups):
        r = main.loc[main["generator"] == g, "rating"]
        counts = np.array([(r == k).sum() for k in range(1, 6)], float)
        ax.bar(np.arange(1, 6) + (i - (len(groups) - 1) / 2) * width, counts / max(counts.sum(), 1), width, label=g)
    ax.set_xticks(range(1, 6), ["def. real", "prob. real", "unsure", "prob. syn.", "def. syn."], fontsize=7)
    ax.set_ylabel("share of ratings")
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save_fig(fig, study / "analysis_ratings.png")
    made.append(study / "analysis_ratings.png")
    return made


def summary_markdown(res: dict) -> str:
    lines = [
        f"# Reader study: {res.get('title', '')}", "",
        f"{res['n_readers']} readers, {res['n_cases']} cases, {res['n_ratings']} ratings (main block"
        f"{', partial: cases every reader has rated' if res.get('partial') else ''}). Scale: {res['scale']}.", "",
        "## Detecting synthetic images, per reader", "",
        "| reader | accuracy | sensitivity | specificity | AUC (95% CI) | binomial p | median s | revised |", "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in res["per_reader"].items():
        lines.append(f"| {name} | {s['accuracy']:.3f} | {s['sensitivity']:.3f} | {s['specificity']:.3f} | "
                     f"{s['auc']:.3f} ({s['auc_ci_low']:.3f}–{s['auc_ci_high']:.3f}) | {s['binomial_p']:.3g} | "
                     f"{s.get('median_seconds', float('nan')):.1f} | {s.get('revised', 0)} |")
    if "all_generators" in res:
        a = res["all_generators"]
        lines += ["", f"All generators together (readers and cases random, Hillis): reader AUC {a['reader_auc']:.3f} "
                  f"({a['reader_auc_ci_low']:.3f}–{a['reader_auc_ci_high']:.3f}), fool rate {a['fool_rate']:.3f} "
                  f"({a['fool_rate_ci_low']:.3f}–{a['fool_rate_ci_high']:.3f})."]
    lines += ["", "## Generators", "", "| generator | fool rate (95% CI) | reader AUC (95% CI) | readers | cases |", "|---|---|---|---|---|"]
    for g, s in res.get("per_generator", {}).items():
        lines.append(f"| {g} | {s['fool_rate']:.3f} ({s['fool_rate_ci_low']:.3f}–{s['fool_rate_ci_high']:.3f}) | "
                     f"{s['reader_auc']:.3f} ({s['reader_auc_ci_low']:.3f}–{s['reader_auc_ci_high']:.3f}) | {s['n_readers']} | {s['n_cases']} |")
    if "mrmc" in res:
        r = res["mrmc"]["random_readers_random_cases"]
        lines += ["", "## MRMC comparison of generators (OR/Hillis, " + res["mrmc"]["cov"] + ", " + res["mrmc"]["design"] + ")", "",
                  f"F = {r['F']:.3f}, df = ({r['ndf']}, {r['ddf']:.2f}), p = {r['p']:.4f}", ""]
        for pw in r["pairwise"]:
            lines.append(f"- {pw['treatments'][0]} − {pw['treatments'][1]}: ΔAUC {pw['difference']:.3f} "
                         f"(95% CI {pw['ci_low']:.3f} to {pw['ci_high']:.3f}), p = {pw['p']:.4f}")
    a = res.get("agreement") or {}
    if a:
        lines += ["", "## Agreement", "", f"Fleiss' κ = {a['fleiss_kappa']:.3f}; Krippendorff's α (ordinal) = {a['krippendorff_alpha_ordinal']:.3f}", ""]
        for pk in a["weighted_kappa_pairs"]:
            lines.append(f"- {pk['readers'][0]} / {pk['readers'][1]}: quadratic-weighted κ = {pk['kappa']:.3f} (n = {pk['n']})")
    if res.get("afc"):
        lines += ["", "## 2AFC (real and synthetic side by side: share of pairs where the real one was picked)", "",
                  "| generator | accuracy (95% CI) | first answers | readers | pairs |", "|---|---|---|---|---|"]
        for g, s in res["afc"].items():
            lines.append(f"| {g} | {s['accuracy']:.3f} ({s['accuracy_ci_low']:.3f}–{s['accuracy_ci_high']:.3f}) | "
                         f"{s['first_answer_accuracy']:.3f} | {s['n_readers']} | {s['n_pairs']} |")
    for ir in res.get("intra_reader", []):
        lines.append(f"- intra-reader {ir['reader']}: exact agreement {ir['exact_agreement']:.2f}, weighted κ {ir['weighted_kappa']:.3f} (n = {ir['n']})")
    lines += ["", "![generators](analysis_generators.png)", "", "![ratings](analysis_ratings.png)", ""]
    return "\n".join(lines)


def markdown_to_html(md: str, title: str = "Reader study") -> str:
    """The small Markdown subset of :func:`summary_markdown` (headings, tables, lists, images) as HTML."""
    import html

    out, table = [], False
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            if all(set(c) <= {"-", ":"} for c in cells):
                continue
            tag = "th" if not table else "td"
            if not table:
                out.append("<table>")
                table = True
            out.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            continue
        if table:
            out.append("</table>")
            table = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("!["):
            out.append(f"<img src='{html.escape(line[line.index('(') + 1:-1])}'>")
        elif line.startswith("- "):
            out.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    if table:
        out.append("</table>")
    style = "body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:.2em .6em;border-bottom:1px solid #ddd}"
    return f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style>\n" + "\n".join(out) + "\n"


def write_analysis(study: Path, res: dict) -> list[Path]:
    """analysis.json, analysis.md, analysis.html and the plots, all written atomically."""
    study = Path(study)
    atomic_write_text(study / "analysis.json", json.dumps(res, indent=2, allow_nan=True))
    md = summary_markdown(res)
    atomic_write_text(study / "analysis.md", md)
    atomic_write_text(study / "analysis.html", markdown_to_html(md))
    return [study / "analysis.json", study / "analysis.md", study / "analysis.html", *plots(study, res)]
