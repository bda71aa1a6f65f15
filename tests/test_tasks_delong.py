"""DeLong's AUC statistics against independent computations: sklearn's AUC, a direct O(m·n)
implementation of DeLong et al. (1988)'s formulas, large case bootstraps, and simulation (coverage
of the interval at a known true AUC, size of the test under the null)."""

import numpy as np
import pytest
from scipy.stats import norm, rankdata
from sklearn.metrics import roc_auc_score

from usbench.errors import InputError
from usbench.tasks.delong import delong_auc, delong_contrast, delong_covariance, delong_test


def _correlated_scores(rng, m=150, n=150):
    y = np.r_[np.ones(m, int), np.zeros(n, int)]
    shared = rng.normal(size=m + n)
    s1 = 1.0 * y + shared
    s2 = 0.8 * y + 0.6 * shared + 0.8 * rng.normal(size=m + n)
    return y, np.round(s1, 1), s2  # s1 rounded: ties must count 1/2


def _delong_1988_direct(y, scores):
    """DeLong et al. (1988), eqs. for V10, V01, S10, S01, written out with the psi kernel."""
    y = y.astype(bool)
    k = len(scores)
    v10, v01 = [], []
    for s in scores:
        x, z = s[y], s[~y]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    v10, v01 = np.array(v10), np.array(v01)
    m, n = v10.shape[1], v01.shape[1]
    auc = v10.mean(axis=1)
    s10 = np.array([[np.sum((v10[a] - auc[a]) * (v10[b] - auc[b])) / (m - 1) for b in range(k)] for a in range(k)])
    s01 = np.array([[np.sum((v01[a] - auc[a]) * (v01[b] - auc[b])) / (n - 1) for b in range(k)] for a in range(k)])
    return auc, s10 / m + s01 / n


def _bootstrap_aucs(y, scores, n_boot, rng):
    """Stratified case bootstrap (class sizes fixed, as DeLong's variance assumes) of k AUCs."""
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    m, n = len(pos), len(neg)
    idx = np.concatenate([rng.choice(pos, size=(n_boot, m)), rng.choice(neg, size=(n_boot, n))], axis=1)
    out = []
    for s in scores:
        r = rankdata(s[idx], axis=1)
        out.append((r[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n))
    return np.array(out)


def test_auc_matches_sklearn_with_ties():
    y, s1, s2 = _correlated_scores(np.random.default_rng(0))
    for s in (s1, s2):
        assert delong_auc(y, s).auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_fast_algorithm_matches_the_1988_formulas():
    y, s1, s2 = _correlated_scores(np.random.default_rng(1), m=40, n=55)
    auc, cov = delong_covariance(y, np.vstack([s1, s2]))
    auc_ref, cov_ref = _delong_1988_direct(y, [s1, s2])
    np.testing.assert_allclose(auc, auc_ref, atol=1e-12)
    np.testing.assert_allclose(cov, cov_ref, rtol=1e-10, atol=1e-15)


def test_variance_and_covariance_agree_with_a_large_bootstrap():
    rng = np.random.default_rng(2)
    y, s1, s2 = _correlated_scores(rng)
    boot = _bootstrap_aucs(y, [s1, s2], 20000, rng)
    _, cov = delong_covariance(y, np.vstack([s1, s2]))
    boot_cov = np.cov(boot)
    assert np.sqrt(cov[0, 0]) == pytest.approx(np.sqrt(boot_cov[0, 0]), rel=0.02)
    assert np.sqrt(cov[1, 1]) == pytest.approx(np.sqrt(boot_cov[1, 1]), rel=0.02)
    assert cov[0, 1] == pytest.approx(boot_cov[0, 1], rel=0.04)
    assert cov[0, 1] > 0.3 * np.sqrt(cov[0, 0] * cov[1, 1])  # the scores are correlated: the test must use it
    diff = delong_test(y, s1, s2)
    assert diff.se == pytest.approx(np.std(boot[1] - boot[0], ddof=1), rel=0.03)


def test_interval_covers_the_true_auc_at_its_level():
    # binormal model: positives N(d, 1), negatives N(0, 1) -> true AUC = Phi(d / sqrt 2)
    rng = np.random.default_rng(3)
    d, m, n, sims = 1.0, 60, 80, 3000
    truth = norm.cdf(d / np.sqrt(2))
    y = np.r_[np.ones(m, int), np.zeros(n, int)]
    covered = 0
    for _ in range(sims):
        est = delong_auc(y, np.r_[rng.normal(d, 1, m), rng.normal(0, 1, n)])
        covered += est.ci_low <= truth <= est.ci_high
    assert 0.93 <= covered / sims <= 0.965


def test_difference_test_holds_its_size_under_the_null():
    # two correlated classifiers with the same true AUC: DeLong's test rejects ~5 % at alpha 0.05
    rng = np.random.default_rng(4)
    m, n, sims = 60, 60, 2000
    y = np.r_[np.ones(m, int), np.zeros(n, int)]
    rejected = 0
    for _ in range(sims):
        shared = rng.normal(size=m + n)
        s1 = y + shared + 0.7 * rng.normal(size=m + n)
        s2 = y + shared + 0.7 * rng.normal(size=m + n)
        rejected += delong_test(y, s1, s2).p_value < 0.05
    assert 0.035 <= rejected / sims <= 0.068


def test_contrast_of_averages_is_the_average_difference():
    y, s1, s2 = _correlated_scores(np.random.default_rng(5))
    scores = np.vstack([s1, s2, s1 + 0.1 * s2, s2 - 0.2 * s1])
    est = delong_contrast(y, scores, [-0.5, 0.5, -0.5, 0.5])
    aucs = [roc_auc_score(y, s) for s in scores]
    assert est.auc == pytest.approx((aucs[1] + aucs[3] - aucs[0] - aucs[2]) / 2, abs=1e-12)
    _, cov = _delong_1988_direct(y, list(scores))
    w = np.array([-0.5, 0.5, -0.5, 0.5])
    assert est.se == pytest.approx(np.sqrt(w @ cov @ w), rel=1e-10)


def test_single_class_cases_are_refused():
    with pytest.raises(InputError, match="AUC is undefined"):
        delong_auc(np.ones(10, int), np.arange(10.0))
    with pytest.raises(InputError, match="0/1"):
        delong_auc(np.array([0, 1, 2]), np.arange(3.0))


def test_perfect_separation_has_no_variance_and_no_false_difference():
    y = np.r_[np.ones(5, int), np.zeros(5, int)]
    s = np.r_[np.arange(5) + 10.0, np.arange(5.0)]
    scores = np.vstack([s, s * 2, s + 1, s, s * 3, s - 1])  # three "seeds" of two arms, all perfect
    w = np.r_[np.full(3, -1 / 3), np.full(3, 1 / 3)]
    est = delong_contrast(y, scores, w)
    assert est.se == 0.0 and abs(est.auc) < 1e-12 and est.p_value == 1.0
    one = delong_auc(y, s)
    assert one.auc == 1.0 and one.se == 0.0 and one.p_value == 0.0
