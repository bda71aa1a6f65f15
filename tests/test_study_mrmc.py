"""MRMC statistics against the published Van Dyke results (Iowa OR-DBM MRMC 2.51, RJafroc, MRMCaov)
and independent computations (statsmodels ANOVA for DBM mean squares, sklearn for AUCs)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from _shared_data import shared_data_dir
from usbench.reader_study import mrmc as M

DATA = shared_data_dir() / "mrmc"
pytestmark = pytest.mark.skipif(not (DATA / "vandyke.csv").is_file(),
                                reason=f"published MRMC data not found in {DATA} (set USBENCH_TEST_DATA)")


@pytest.fixture(scope="module")
def vandyke():
    return pd.read_csv(DATA / "vandyke.csv")


@pytest.fixture(scope="module")
def franken():
    return pd.read_csv(DATA / "franken.csv")


def test_vandyke_aucs_and_or_covariances(vandyke):
    res = M.mrmc(vandyke, cov="jackknife")
    o = res.obuchowski_rockette
    assert np.round(o["auc_means"], 8).tolist() == [0.89703704, 0.94083736]
    assert np.round(res.auc[0], 8).tolist() == [0.91964573, 0.85877617, 0.90386473, 0.97310789, 0.82979066]
    assert np.round(res.auc[1], 8).tolist() == [0.94782609, 0.90531401, 0.92173913, 0.99935588, 0.92995169]
    cv = o["covariances"]
    assert [round(cv[k], 8) for k in ("var", "cov1", "cov2", "cov3")] == [0.00080229, 0.00034661, 0.00034407, 0.00023903]
    ms = o["mean_squares"]
    assert round(ms["ms_t"], 8) == 0.00479617 and round(ms["ms_tr"], 8) == 0.00055103
    assert not o["constraint_active"]


def test_vandyke_random_readers_random_cases(vandyke):
    r = M.mrmc(vandyke, cov="jackknife").obuchowski_rockette["random_readers_random_cases"]
    assert round(r["F"], 2) == 4.46 and round(r["ddf"], 2) == 15.26 and round(r["p"], 4) == 0.0517
    pw = r["pairwise"][0]
    assert round(pw["difference"], 5) == -0.04380 and round(pw["se"], 5) == 0.02075
    assert (round(pw["ci_low"], 5), round(pw["ci_high"], 5)) == (-0.08796, 0.00036)
    single = r["single"]
    assert (round(single[0]["ci_low"], 5), round(single[0]["ci_high"], 5), round(single[0]["df"], 2)) == (0.82522, 0.96885, 12.74)
    assert (round(single[1]["ci_low"], 5), round(single[1]["ci_high"], 5), round(single[1]["df"], 2)) == (0.89414, 0.98754, 12.71)


def test_vandyke_fixed_readers_and_fixed_cases(vandyke):
    o = M.mrmc(vandyke, cov="jackknife").obuchowski_rockette
    f = o["fixed_readers_random_cases"]
    assert round(f["chi2"], 5) == 5.47595 and round(f["p"], 4) == 0.0193
    c = o["random_readers_fixed_cases"]
    assert (c["ndf"], c["ddf"]) == (1, 4) and round(c["F"], 2) == 8.70 and round(c["p"], 4) == 0.0420


def test_vandyke_delong_and_unbiased_covariances(vandyke):
    d = M.mrmc(vandyke, cov="delong").obuchowski_rockette["random_readers_random_cases"]
    assert (round(d["F"], 6), round(d["ddf"], 5), round(d["p"], 8)) == (4.484854, 15.06611, 0.05123303)
    u = M.mrmc(vandyke, cov="unbiased").obuchowski_rockette["random_readers_random_cases"]
    assert (round(u["F"], 6), round(u["ddf"], 5), round(u["p"], 7)) == (4.489614, 15.03418, 0.0511618)


def _statsmodels_dbm_mean_squares(data):
    """DBM mean squares by statsmodels' ANOVA of the pseudovalues (all interactions but the 3-way, whose
    residual is TRC): an implementation independent of ours."""
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    Y = M.pseudovalues(data)
    T, R, K = Y.shape
    t, r, c = np.meshgrid(range(T), range(R), range(K), indexing="ij")
    long = pd.DataFrame({"y": Y.ravel(), "t": t.ravel(), "r": r.ravel(), "c": c.ravel()})
    fit = smf.ols("y ~ C(t) + C(r) + C(c) + C(t):C(r) + C(t):C(c) + C(r):C(c)", long).fit()
    table = anova_lm(fit, typ=1)
    return (table["sum_sq"] / table["df"]).to_numpy()


def test_vandyke_dbm_mean_squares_published_and_statsmodels(vandyke):
    data = M.prepare(vandyke)
    res = M.dbm_analysis(data)
    ms = res["mean_squares"]
    # The Iowa program prints 8 digits computed in single precision: agreement to 1e-6 absolute.
    published = dict(zip(["t", "r", "c", "tr", "tc", "rc", "trc"],
                         [.54676316, .43732679, .39686891, .06281753, .09984813, .06450099, .03997167]))
    for k, v in published.items():
        assert ms[k] == pytest.approx(v, abs=1.0e-6), k
    ours = [ms[k] for k in ("t", "r", "c", "tr", "tc", "rc", "trc")]
    np.testing.assert_allclose(ours, _statsmodels_dbm_mean_squares(data), rtol=1e-9)
    # OR with jackknife covariances and DBM are the same test (Hillis et al. 2005).
    o = M.mrmc(vandyke).obuchowski_rockette["random_readers_random_cases"]
    assert res["F"] == pytest.approx(o["F"], rel=1e-10) and res["ddf"] == pytest.approx(o["ddf"], rel=1e-10)


def test_aucs_match_sklearn(franken):
    data = M.prepare(franken)
    theta = M.auc_matrix(data)
    for t in range(2):
        for r in range(4):
            assert theta[t, r] == pytest.approx(roc_auc_score(data.truth, data.ratings[t, r]), abs=1e-12)


def test_franken_constraint_branch(franken):
    res = M.mrmc(franken, cov="jackknife")
    o = res.obuchowski_rockette
    cv = o["covariances"]
    assert cv["cov2"] < cv["cov3"] and o["constraint_active"]
    r = o["random_readers_random_cases"]
    # With max(Cov2 - Cov3, 0) = 0 the RRRC test reduces to the fixed-cases test: F = MS(T)/MS(TR), ddf = (t-1)(r-1).
    assert r["F"] == pytest.approx(o["mean_squares"]["ms_t"] / o["mean_squares"]["ms_tr"], rel=1e-12)
    assert r["ddf"] == pytest.approx(3.0)
    # DBM (a separate path through pseudovalues) hits the same constraint, MS(TC) < MS(TRC), and gives the same F.
    assert res.dbm["constraint_active"] and res.dbm["F"] == pytest.approx(r["F"], rel=1e-10)
    ms = res.dbm["mean_squares"]
    np.testing.assert_allclose([ms[k] for k in ("t", "r", "c", "tr", "tc", "rc", "trc")],
                               _statsmodels_dbm_mean_squares(M.prepare(franken)), rtol=1e-9)


def test_delong_variance_matches_mann_whitney_formula(franken):
    """DeLong's variance of one AUC equals Hanley-style structural components computed by hand."""
    data = M.prepare(franken)
    cov = M.auc_covariance(data, "delong")
    y, truth = data.ratings[0, 0], data.truth
    pos, neg = y[truth == 1], y[truth == 0]
    v10 = np.array([np.mean((p > neg) + 0.5 * (p == neg)) for p in pos])
    v01 = np.array([np.mean((pos > n) + 0.5 * (pos == n)) for n in neg])
    assert cov[0, 0] == pytest.approx(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg), rel=1e-12)


def test_nested_design_delong_only(vandyke):
    # Drop half of the positive cases from treatment 1 and the other half from treatment 0: nested positives.
    df = vandyke.copy()
    pos_cases = sorted(df.loc[df.truth == 1, "case"].unique())
    half = set(pos_cases[: len(pos_cases) // 2])
    keep = ~(((df.treatment == 0) & df.case.isin(half)) | ((df.treatment == 1) & df.case.isin(set(pos_cases) - half) & (df.truth == 1)))
    nested = df[keep]
    res = M.mrmc(nested, cov="delong")
    assert res.nested and res.dbm is None
    # Treatment AUCs computed on each treatment's own cases.
    t0 = nested[(nested.treatment == 0) & (nested.reader == 0)]
    assert res.auc[0][0] == pytest.approx(roc_auc_score(t0.truth, t0.rating))
    with pytest.raises(M.InputError, match="nested"):
        M.mrmc(nested, cov="jackknife")
    # Two treatments that share only the negative cases: DeLong's covariance is the negative-case
    # component alone, (1/n0) * cov(V01_A, V01_B), computed here by hand for reader 0.
    data = M.prepare(nested)
    cov = M.auc_covariance(data, "delong")
    R = len(data.readers)

    def v01(t):
        y = data.ratings[t, 0]
        neg = y[(data.truth == 0) & data.present[t]]
        pos = y[(data.truth == 1) & data.present[t]]
        return np.array([np.mean((pos > x) + 0.5 * (pos == x)) for x in neg])

    a, b = v01(0), v01(1)
    assert cov[0, R] == pytest.approx(np.cov(a, b, ddof=1)[0, 1] / len(a), rel=1e-12)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.drop(columns=["truth"]), "lacks the column"),
    (lambda d: d[d.reader == 0], "single reader"),
    (lambda d: d[d.treatment == 0], "single treatment"),
    (lambda d: pd.concat([d, d.iloc[:1]]), "rated twice"),
])
def test_bad_tables(vandyke, mutate, message):
    with pytest.raises(M.InputError, match=message):
        M.mrmc(mutate(vandyke))


def test_three_treatments_or_equals_dbm(vandyke):
    """With T = 3 the OR (jackknife) and DBM tests still coincide (Hillis et al. 2005), and the
    pairwise differences are the differences of the treatment means."""
    rng = np.random.default_rng(1)
    third = vandyke[vandyke.treatment == 0].assign(treatment=2)
    third["rating"] = np.clip(third["rating"] + rng.integers(-1, 2, len(third)), 1, 5)
    df = pd.concat([vandyke, third])
    res = M.mrmc(df, cov="jackknife")
    o = res.obuchowski_rockette["random_readers_random_cases"]
    assert o["ndf"] == 2 and res.dbm["ndf"] == 2
    assert res.dbm["F"] == pytest.approx(o["F"], rel=1e-10) and res.dbm["ddf"] == pytest.approx(o["ddf"], rel=1e-10)
    means = res.obuchowski_rockette["auc_means"]
    assert [(p["treatments"], round(p["difference"], 12)) for p in o["pairwise"]] == [
        (["0", "1"], round(means[0] - means[1], 12)), (["0", "2"], round(means[0] - means[2], 12)),
        (["1", "2"], round(means[1] - means[2], 12))]


def test_jackknife_covariance_by_brute_force(franken):
    """Leave each case out, recompute every AUC with sklearn, form the jackknife covariance by hand."""
    data = M.prepare(franken)
    T, R, K = data.ratings.shape
    loo = np.empty((T * R, K))
    for t in range(T):
        for r in range(R):
            for k in range(K):
                keep = np.arange(K) != k
                loo[t * R + r, k] = roc_auc_score(data.truth[keep], data.ratings[t, r, keep])
    dev = loo - loo.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(M.auc_covariance(data, "jackknife"), (K - 1) / K * dev @ dev.T, rtol=1e-10, atol=1e-15)
