"""Core metric functions against their reference implementations (torch-fidelity, prdc, scipy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from usbench.errors import InputError, NotEnoughImagesError
from usbench.metrics.bootstrap import bootstrap
from usbench.metrics.frechet import (bootstrap_frechet, fd_infinity, feature_statistics, frechet_distance,
                                     frechet_distance_from_features)
from usbench.metrics.kid import kid_from_features
from usbench.metrics.prdc import prdc_from_features


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """Small dense problems on the shared 2-core test machine: one BLAS thread avoids spin contention."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def correlated(rng, n, d, shift=0.0, scale=1.0):
    A = rng.normal(size=(d, d)) / np.sqrt(d)
    return shift + scale * rng.normal(size=(n, d)) @ A + 0.1 * rng.normal(size=(n, d))


def tf_fid(X1, X2):
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    s1 = fid_features_to_statistics(torch.from_numpy(X1))
    s2 = fid_features_to_statistics(torch.from_numpy(X2))
    return fid_statistics_to_metric(s1, s2, verbose=False)[KEY_METRIC_FID]


@pytest.mark.parametrize("route", ["eigen", "nuclear", "auto"])
def test_fid_equals_torch_fidelity_when_n_exceeds_d(route):
    rng = np.random.default_rng(0)
    X1, X2 = correlated(rng, 400, 64), correlated(rng, 350, 64, shift=0.3, scale=1.2)
    ours = frechet_distance_from_features(X1, X2, route=route)
    assert ours == pytest.approx(tf_fid(X1, X2), rel=1e-6)


def test_fid_statistics_layer_equals_torch_fidelity():
    rng = np.random.default_rng(1)
    X1, X2 = correlated(rng, 300, 32), correlated(rng, 300, 32, shift=1.0)
    assert frechet_distance(*feature_statistics(X1), *feature_statistics(X2)) == pytest.approx(tf_fid(X1, X2), rel=1e-6)


def test_fid_nuclear_route_when_n_below_d_matches_scipy_sqrtm_and_torch_fidelity():
    from scipy import linalg

    rng = np.random.default_rng(2)
    X1, X2 = correlated(rng, 60, 200), correlated(rng, 70, 200, shift=0.2)
    ours = frechet_distance_from_features(X1, X2)  # auto → nuclear
    m1, s1 = feature_statistics(X1)
    m2, s2 = feature_statistics(X2)
    # scipy in extended care: sqrtm of the symmetric PSD product S1^½ S2 S1^½ is well defined
    r = linalg.sqrtm(s1)
    ref = float((m1 - m2) @ (m1 - m2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(r @ s2 @ r)).real)
    assert ours == pytest.approx(ref, rel=1e-6)
    assert ours == pytest.approx(tf_fid(X1, X2), rel=1e-4)  # torch-fidelity's nonsymmetric eigvals lose digits here


def test_fid_of_a_set_with_itself_is_zero():
    X = np.random.default_rng(3).normal(size=(50, 80))
    assert abs(frechet_distance_from_features(X, X)) < 1e-9


def test_gram_bootstrap_equals_direct_bootstrap():
    rng = np.random.default_rng(4)
    X1, X2 = correlated(rng, 40, 90), correlated(rng, 50, 90, shift=0.5)
    lo_g, hi_g, vg = bootstrap_frechet(X1, X2, B=15, seed=7, route="gram")
    lo_d, hi_d, vd = bootstrap_frechet(X1, X2, B=15, seed=7, route="direct")
    np.testing.assert_allclose(vg, vd, rtol=1e-7)
    # and both are the generic bootstrap of the point estimate
    _, _, vgen = bootstrap(frechet_distance_from_features, [X1, X2], B=15, seed=7)
    np.testing.assert_allclose(vgen, vd, rtol=1e-12)


def test_fd_infinity_recovers_the_limit_of_a_known_bias():
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(4000, 8))
    gen = rng.normal(0.5, 1.0, size=(2000, 8))
    value, info = fd_infinity(gen, ref, seed=0)
    # true FD between N(0.5·1, I) and N(0, I) in 8-d is 8 · 0.25 = 2 (plus a small finite-ref bias)
    assert value == pytest.approx(2.0, abs=0.15)
    assert info["slope"] > 0  # FID decreases as N grows


def test_kid_equals_torch_fidelity_with_the_same_subsets():
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    rng = np.random.default_rng(6)
    X1, X2 = correlated(rng, 120, 16, shift=0.2), correlated(rng, 150, 16)
    ours, std, info = kid_from_features(X1, X2, n_subsets=20, subset_size=50, seed=123)
    ref = kid_features_to_metric(torch.from_numpy(X1), torch.from_numpy(X2), kid_subsets=20, kid_subset_size=50,
                                 rng_seed=123, verbose=False, kid_kernel="poly", kid_kernel_poly_degree=3,
                                 kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1)
    assert ours == pytest.approx(ref[KEY_METRIC_KID_MEAN], rel=1e-9)
    assert std == pytest.approx(ref[KEY_METRIC_KID_STD], rel=1e-9)
    assert "subset_size_reduced" not in info


def test_kid_says_when_n_is_below_the_subset_size():
    rng = np.random.default_rng(7)
    _, _, info = kid_from_features(rng.normal(size=(30, 4)), rng.normal(size=(40, 4)), n_subsets=5, subset_size=1000)
    assert info["subset_size"] == 30
    assert "below subset size" in info["subset_size_reduced"]


def test_prdc_equals_prdc_package():
    from prdc import compute_prdc

    rng = np.random.default_rng(8)
    real, fake = correlated(rng, 200, 10), correlated(rng, 180, 10, shift=0.4, scale=0.9)
    ours = prdc_from_features(real, fake, k=5)
    ref = compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(float(ref[key]), abs=1e-12), key


def test_bootstrap_is_seeded_and_covers_the_population_mean():
    hits = 0
    for r in range(100):
        x = np.random.default_rng(r).normal(3.0, 1.0, size=(100, 1))
        lo, hi, _ = bootstrap(lambda v: float(v.mean()), [x], B=200, seed=r)
        hits += lo < 3.0 < hi
    assert hits >= 88  # nominal 95 of 100; the interval's estimand is the population mean, 3.0
    x = np.random.default_rng(9).normal(3.0, 1.0, size=(200, 1))
    a = bootstrap(lambda v: float(v.mean()), [x], B=300, seed=1)
    b = bootstrap(lambda v: float(v.mean()), [x], B=300, seed=1)
    assert a[0] == b[0] and a[1] == b[1]


def test_nan_and_inf_features_are_refused():
    X = np.ones((10, 3))
    bad = X.copy()
    bad[2, 1] = np.nan
    with pytest.raises(InputError, match="NaN or infinite"):
        frechet_distance_from_features(bad, X)
    bad[2, 1] = np.inf
    with pytest.raises(InputError, match="NaN or infinite"):
        kid_from_features(X, bad)


def test_too_few_rows_are_refused_with_the_minimum():
    with pytest.raises(NotEnoughImagesError, match="at least 2"):
        frechet_distance_from_features(np.ones((1, 3)), np.ones((5, 3)))
    with pytest.raises(NotEnoughImagesError, match="more than 5"):
        prdc_from_features(np.random.rand(5, 3), np.random.rand(20, 3), k=5)


def test_fid_when_n_below_d_equals_a_40_digit_reference():
    """N < d: the exact value in 40-digit arithmetic (mpmath) of the same definition; ours is exact
    to round-off, torch-fidelity's eigenvalues of the singular d×d product are not."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    rng = np.random.default_rng(0)
    n, d = 12, 32
    basis = rng.normal(size=(8, d))
    X1 = np.abs(rng.normal(size=(n, 8)) @ basis + 0.3 * rng.normal(size=(n, d)))
    X2 = np.abs(rng.normal(size=(n, 8)) @ basis + 0.3 * rng.normal(size=(n, d)) + 0.05)

    def centred(X):
        M = mp.matrix(X.tolist())
        mu = [mp.fsum(M[i, j] for i in range(n)) / n for j in range(d)]
        return mp.matrix([[M[i, j] - mu[j] for j in range(d)] for i in range(n)]), mu

    C1, m1 = centred(X1)
    C2, m2 = centred(X2)
    nuclear = mp.fsum(mp.svd_r(C1 * C2.T / (n - 1), compute_uv=False))
    tr = lambda C: mp.fsum(C[i, j] ** 2 for i in range(n) for j in range(d)) / (n - 1)  # noqa: E731
    exact = float(mp.fsum((a - b) ** 2 for a, b in zip(m1, m2)) + tr(C1) + tr(C2) - 2 * nuclear)
    assert frechet_distance_from_features(X1, X2) == pytest.approx(exact, rel=1e-12)


def test_kid_per_subset_kernels_equal_the_gram_route():
    from usbench.metrics.kid import kid_by_subsets

    rng = np.random.default_rng(11)
    X1, X2 = correlated(rng, 90, 6, shift=0.3), correlated(rng, 80, 6)
    a = kid_from_features(X1, X2, n_subsets=7, subset_size=40, seed=3)
    b = kid_by_subsets(X1, X2, 7, 40, 3)
    assert a[0] == pytest.approx(b[0], rel=1e-10) and a[1] == pytest.approx(b[1], rel=1e-10)


def test_subset_frechet_equals_the_direct_fid_of_each_subset():
    """FD∞'s fast route (s×s eigenproblems against a fixed reference) equals the FID computed from
    scratch on each subset, with d > s (where it is used) and d < s."""
    from usbench.metrics.frechet import SubsetFrechet, fd_infinity, frechet_distance_from_features

    rng = np.random.default_rng(3)
    for n1, n2, d in [(120, 90, 200), (80, 100, 12)]:
        X1 = rng.normal(size=(n1, d)) @ rng.normal(size=(d, d)) / np.sqrt(d)
        X2 = rng.normal(0.3, 1.2, size=(n2, d))
        fast = SubsetFrechet(X1, X2)
        for s in (5, 37, n1):
            idx = rng.choice(n1, s, replace=False)
            # the nuclear-norm route to 1e-9; the d×d eigen route (√ of a rank-deficient Σ1, whose
            # rounding-noise eigenvalues it clips) agrees to ~3e-8 when s < d
            assert fast(idx) == pytest.approx(frechet_distance_from_features(X1[idx], X2, route="nuclear"), rel=1e-9)
            assert fast(idx) == pytest.approx(frechet_distance_from_features(X1[idx], X2, route="eigen"), rel=1e-6)
    # and FD∞ through it equals FD∞ fitted on the direct FIDs of the same subsets
    X1, X2 = rng.normal(size=(150, 300)), rng.normal(0.2, size=(160, 300))
    sizes = [30, 60, 90, 120, 149]
    value, details = fd_infinity(X1, X2, sizes=sizes, seed=5)
    r = np.random.default_rng(5)
    direct = [frechet_distance_from_features(X1[r.choice(150, size=s, replace=False)], X2, route="nuclear") for s in sizes]
    assert details["fid_at_sizes"] == pytest.approx(direct, rel=1e-9)
    assert value == pytest.approx(np.polyfit(1 / np.array(sizes), direct, 1)[1], rel=1e-8)


def test_gram_bootstrap_in_two_processes_equals_one_process():
    """The Gram route split over worker processes gives the same floats as one process: the
    resamples are drawn in the parent, in order, so the values do not depend on the workers."""
    from usbench.metrics import frechet

    rng = np.random.default_rng(8)
    X1, X2 = correlated(rng, 40, 90), correlated(rng, 50, 90, shift=0.5)
    G11, G22, G12 = X1 @ X1.T, X2 @ X2.T, X1 @ X2.T
    args = (G11, G22, G12, np.diag(G11).copy(), np.diag(G22).copy(), np.sqrt(39 * 49))
    one, two = np.empty(13), np.empty(13)
    frechet._gram_resamples(one, np.random.default_rng(2), *args, workers=1)
    frechet._gram_resamples(two, np.random.default_rng(2), *args, workers=2)
    assert np.array_equal(one, two)
    _, _, direct = bootstrap_frechet(X1, X2, B=13, seed=2, route="direct")
    np.testing.assert_allclose(one, direct, rtol=1e-7)


@pytest.mark.parametrize("width", [6, 64])
def test_prdc_subset_indicators_equal_the_indicators_of_the_subset_matrices(width):
    """The subsampling interval's fast draw (sorted neighbours, radius −∞ outside the subset) gives
    the same floats as PRDC recomputed on copies of the subsets' distance matrices (the route
    checked against the prdc package above); width 6 forces the fallback for most rows."""
    from usbench.metrics.prdc import (SortedNeighbours, indicators_from_distances, pairwise_distances,
                                      subset_indicator_means)

    rng = np.random.default_rng(11)
    X, Y = rng.normal(size=(90, 7)), rng.normal(0.4, size=(70, 7))
    D_rr, D_ff, D = pairwise_distances(X, X), pairwise_distances(Y, Y), pairwise_distances(X, Y)
    near_rr, near_ff = SortedNeighbours(D_rr, width), SortedNeighbours(D_ff, width)
    for _ in range(25):
        ir, jf = np.sort(rng.choice(90, 81, replace=False)), np.sort(rng.choice(70, 63, replace=False))
        slow = indicators_from_distances(D_rr[np.ix_(ir, ir)], D_ff[np.ix_(jf, jf)], D[np.ix_(ir, jf)], 5)
        fast = subset_indicator_means(D, near_rr, near_ff, ir, jf, 5)
        assert fast == {name: float(v.mean()) for name, v in slow.items()}


def test_fd_infinity_half_samples_in_two_processes_equal_one_process():
    """FD∞'s half-sampling interval (d > 64, the SubsetFrechet route) gives the same floats on
    two worker processes as on one, and each half-sample's FIDs equal the direct FIDs."""
    from usbench.metrics.frechet import SubsetFrechet, _half_sample_fds, fd_infinity_interval

    rng = np.random.default_rng(9)
    X1, X2 = rng.normal(size=(60, 100)), rng.normal(0.3, size=(70, 100))
    sizes = [12, 24, 36, 48, 60]
    one = fd_infinity_interval(X1, X2, sizes, B=9, seed=4, workers=1)
    two = fd_infinity_interval(X1, X2, sizes, B=9, seed=4, workers=2)
    assert one[:2] == two[:2] and np.array_equal(one[2], two[2])
    order = rng.permutation(60)[:30]
    direct = [frechet_distance_from_features(X1[order[:s]], X2, route="nuclear") for s in (6, 12, 30)]
    assert _half_sample_fds(SubsetFrechet(X1, X2), (6, 12, 30), order) == pytest.approx(direct, rel=1e-9)
