"""Fréchet distance between Gaussians fitted to two feature sets: statistics → distance.

Layers, each usable alone:

- :func:`feature_statistics` (X → mean, covariance in float64, ``ddof=1`` like ``np.cov``);
- :func:`frechet_distance` (μ1, Σ1, μ2, Σ2 → d², symmetric eigen route);
- :func:`frechet_distance_from_features` (X1, X2 → d²; the nuclear-norm route when N < d);
- :func:`fd_infinity` (Chong & Forsyth 2020: extrapolate FID over N to N = ∞).

No ``scipy.linalg.sqrtm``: tr √(Σ1Σ2) is computed from eigenvalues of a symmetric matrix or
from singular values, which is exact in float64 and far cheaper.
"""

from __future__ import annotations

import numpy as np

from usbench.common import single_blas_thread
from usbench.errors import InputError, NotEnoughImagesError


def check_features(X: np.ndarray, what: str = "features", min_rows: int = 2) -> np.ndarray:
    """Return ``X`` as a 2-D float64 array; raise a one-line error on NaN/inf or too few rows."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise InputError(f"{what} must be a 2-D (n, d) matrix, got shape {X.shape}", "pass one row per image")
    if X.shape[0] < min_rows:
        raise NotEnoughImagesError(f"{what} has {X.shape[0]} rows but at least {min_rows} are needed",
                                   "use more images")
    if not np.isfinite(X).all():
        bad = int((~np.isfinite(X)).any(axis=1).sum())
        raise InputError(f"{what} contain NaN or infinite values in {bad} rows",
                         "check the images (constant or corrupt) and the extractor weights")
    return X


def feature_statistics(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (``ddof=1``) of the rows of ``X``, in float64.

    Example:
        >>> import numpy as np
        >>> mu, sigma = feature_statistics(np.array([[0.0, 1.0], [2.0, 3.0]]))
        >>> mu.tolist(), sigma.tolist()
        ([1.0, 2.0], [[2.0, 2.0], [2.0, 2.0]])
    """
    X = check_features(X)
    mu = X.mean(axis=0)
    Xc = X - mu
    return mu, (Xc.T @ Xc) / (X.shape[0] - 1)


def _sqrt_psd(S: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh((S + S.T) / 2)
    return (V * np.sqrt(np.clip(w, 0, None))) @ V.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr √(Σ1 Σ2) for symmetric PSD Σ1, Σ2 via the eigenvalues of the symmetric Σ1^½ Σ2 Σ1^½."""
    r = _sqrt_psd(sigma1)
    m = r @ sigma2 @ r
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(μ1, Σ1) and N(μ2, Σ2).

    d² = ‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr √(Σ1 Σ2), with the trace term from a symmetric
    eigendecomposition (no ``sqrtm``). This is FID when the statistics are Inception pool3 features.

    Example:
        >>> import numpy as np
        >>> round(frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2)), 6)
        4.0
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise InputError(f"statistics do not match: means {mu1.shape}/{mu2.shape}, covariances {sigma1.shape}/{sigma2.shape}",
                         "compute both with the same extractor")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sigma1, sigma2))


def frechet_distance_from_features(X1: np.ndarray, X2: np.ndarray, route: str = "auto") -> float:
    """Squared Fréchet distance between Gaussians fitted to the rows of ``X1`` and ``X2``.

    ``route="nuclear"`` (the default when min(n1, n2) < d): tr √(Σ1Σ2) equals the nuclear norm
    (sum of singular values) of X1c X2cᵀ / √((n1−1)(n2−1)) with centred matrices, an n1×n2
    problem instead of a d×d one. ``route="eigen"``: statistics, then
    :func:`frechet_distance`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X1, X2 = rng.normal(size=(50, 80)), rng.normal(1.0, size=(60, 80))
        >>> a = frechet_distance_from_features(X1, X2, route="nuclear")
        >>> b = frechet_distance_from_features(X1, X2, route="eigen")
        >>> bool(abs(a - b) < 1e-8 * a)
        True
    """
    X1, X2 = check_features(X1, "generated features"), check_features(X2, "reference features")
    if X1.shape[1] != X2.shape[1]:
        raise InputError(f"feature dimensions differ: {X1.shape[1]} vs {X2.shape[1]}", "use the same extractor for both sets")
    n1, n2, d = X1.shape[0], X2.shape[0], X1.shape[1]
    if route == "auto":
        route = "nuclear" if min(n1, n2) < d else "eigen"
    if route == "eigen":
        return frechet_distance(*feature_statistics(X1), *feature_statistics(X2))
    if route != "nuclear":
        raise ValueError(f"unknown route {route!r}")
    mu1, mu2 = X1.mean(0), X2.mean(0)
    A, B = X1 - mu1, X2 - mu2
    cross = (A @ B.T) / np.sqrt((n1 - 1) * (n2 - 1))
    nuclear = np.linalg.svd(cross, compute_uv=False).sum()
    diff = mu1 - mu2
    tr1 = np.einsum("ij,ij->", A, A) / (n1 - 1)
    tr2 = np.einsum("ij,ij->", B, B) / (n2 - 1)
    return float(diff @ diff + tr1 + tr2 - 2 * nuclear)


class SubsetFrechet:
    """d² of many subsets of ``X1`` against all of ``X2`` (the reference held fixed), each in an
    s×s problem: FD∞ and its half-samples fit hundreds of such subsets.

    With K = X1·X2cᵀ (X2c centred), H = K·Kᵀ/(n2−1) = X1 Σ2 X1ᵀ, G = X1·X1ᵀ and v = X1·μ2 computed
    once, a subset S of size s with centring matrix C has tr Σ1 = tr(C G_SS C)/(s−1),
    ‖μ1−μ2‖² = ΣG_SS/s² − 2·mean(v_S) + μ2·μ2, and tr √(Σ1Σ2) = Σ √eig(C H_SS C)/(s−1)) (the
    nonzero eigenvalues of Σ2^½ Σ1 Σ2^½). No d×d matrix is formed per subset.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X1, X2 = rng.normal(size=(60, 90)), rng.normal(0.5, size=(70, 90))
        >>> idx = rng.choice(60, 25, replace=False)
        >>> a = SubsetFrechet(X1, X2)(idx)
        >>> b = frechet_distance_from_features(X1[idx], X2)
        >>> bool(abs(a - b) < 1e-8 * b)
        True
    """

    def __init__(self, X1: np.ndarray, X2: np.ndarray):
        X1, X2 = check_features(X1, "generated features"), check_features(X2, "reference features")
        mu2 = X2.mean(0)
        X2c = X2 - mu2
        K = X1 @ X2c.T
        self.H = K @ K.T / (len(X2) - 1)
        self.G = X1 @ X1.T
        self.v = X1 @ mu2
        self.mu2_sq = float(mu2 @ mu2)
        self.tr2 = float(np.einsum("ij,ij->", X2c, X2c) / (len(X2) - 1))

    def __call__(self, idx: np.ndarray) -> float:
        idx = np.asarray(idx)
        s = len(idx)
        G, H = self.G[np.ix_(idx, idx)], self.H[np.ix_(idx, idx)]
        tr1 = (np.trace(G) - G.sum() / s) / (s - 1)
        mean_sq = G.sum() / (s * s) - 2 * self.v[idx].mean() + self.mu2_sq
        Hc = H - H.mean(0, keepdims=True) - H.mean(1, keepdims=True) + H.mean()  # C H C
        ev = np.linalg.eigvalsh((Hc + Hc.T) / 2) / (s - 1)
        # C H C has rank ≤ min(s − 1, d): the other eigenvalues are rounding noise, whose square roots
        # (~1e-8 of the largest each) would add up
        ev[ev < max(ev.max(), 0.0) * s * np.finfo(np.float64).eps] = 0.0
        return float(mean_sq + tr1 + self.tr2 - 2 * np.sqrt(ev).sum())


def fd_infinity(X1: np.ndarray, X2: np.ndarray, sizes: list[int] | None = None, repeats: int = 1,
                seed: int = 0) -> tuple[float, dict]:
    """FD∞ (Chong & Forsyth 2020): FID is linear in 1/N; fit it over subsets of the generated set
    of sizes ``sizes`` (default 15 sizes from N/5... N) and extrapolate to 1/N = 0.

    Returns (FD∞, details with the points and the slope). The reference set is kept whole.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(400, 4)); Y = rng.normal(size=(400, 4))
        >>> v, _ = fd_infinity(X, Y)
        >>> bool(abs(v) < 0.05)
        True
    """
    X1, X2 = check_features(X1, "generated features"), check_features(X2, "reference features")
    n = X1.shape[0]
    if sizes is None:
        lo = max(2, n // 5)
        sizes = sorted(set(np.linspace(lo, n, 15).astype(int).tolist()))
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    d = X1.shape[1]
    fd = SubsetFrechet(X1, X2) if max(sizes) < d else lambda idx: frechet_distance_from_features(X1[idx], X2)
    for size in sizes:
        for _ in range(repeats):
            idx = rng.choice(n, size=size, replace=False)
            xs.append(1.0 / size)
            ys.append(fd(idx))
    slope, intercept = np.polyfit(np.array(xs), np.array(ys), 1)
    return float(intercept), {"sizes": list(map(int, sizes)), "fid_at_sizes": [float(y) for y in ys], "slope": float(slope)}


def bootstrap_frechet(X1: np.ndarray, X2: np.ndarray, B: int = 1000, seed: int = 0, level: float = 0.95,
                      route: str = "auto", estimate: float | None = None) -> tuple[float, float, np.ndarray]:
    """Basic bootstrap interval of the population Fréchet distance d² (rows of each set resampled).

    Estimand: d² between the two distributions' Gaussians (the large-N value), which the
    plug-in estimate overshoots by about tr Σ1/n1 + tr Σ2/n2. Resampling with replacement
    overshoots the estimate by about as much again, so the basic interval
    (:func:`usbench.metrics.bootstrap.basic_interval`, clipped at 0) is centred on the bias-corrected
    value; coverage is measured in ``tests/test_metrics_coverage.py``. ``estimate``: the
    point estimate when already computed. Returns (low, high, the raw resampled values).

    The resamples are those of :func:`usbench.metrics.bootstrap.bootstrap` with the same seed.
    ``route="gram"`` (default when min(n1, n2) < d and the sets are not huge) never forms a
    d×d matrix: with Gram matrices G11 = X1X1ᵀ, G22, G12 computed once, a resample given by
    multiplicities w1, w2 has mean norms, traces and the centred cross product
    diag(√w1)(X1−μ1)(X2−μ2)ᵀdiag(√w2) all from G's rows and columns of the distinct drawn images,
    and tr √(Σ1Σ2) is the sum of the square roots of the eigenvalues of C Cᵀ (about 0.63·n wide).
    ``route="batched"`` (default for d ≤ 64): all resampled means and covariances at once from the
    multiplicities, one stacked eigendecomposition. ``route="direct"`` recomputes
    :func:`frechet_distance_from_features` on each resample.
    """
    from usbench.metrics.bootstrap import basic_interval, resample_indices

    X1, X2 = check_features(X1, "generated features"), check_features(X2, "reference features")
    n1, n2, d = X1.shape[0], X2.shape[0], X1.shape[1]
    if B <= 0:
        return float("nan"), float("nan"), np.empty(0)
    if estimate is None:
        estimate = frechet_distance_from_features(X1, X2)
    if route == "auto":
        route = "batched" if d <= 64 else "gram" if min(n1, n2) < d and max(n1, n2) <= 4000 else "direct"
    rng = np.random.default_rng(seed)
    vals = np.empty(B)
    if route == "batched":  # one vectorised draw (not the per-resample draws of the other routes)
        vals[:] = frechet_distance_weighted(X1, _counts(rng.integers(0, n1, (B, n1)), n1),
                                            X2, _counts(rng.integers(0, n2, (B, n2)), n2))
    elif route == "direct":
        import contextlib

        with single_blas_thread() if d <= 256 else contextlib.nullcontext():
            for b in range(B):
                i1, i2 = resample_indices(rng, (n1, n2))
                vals[b] = frechet_distance_from_features(X1[i1], X2[i2])
    else:
        G11, G22, G12 = X1 @ X1.T, X2 @ X2.T, X1 @ X2.T
        g11, g22 = np.diag(G11).copy(), np.diag(G22).copy()
        norm = np.sqrt((n1 - 1) * (n2 - 1))
        _gram_resamples(vals, rng, G11, G22, G12, g11, g22, norm)
    lo, hi = basic_interval(vals, estimate, level, lower_bound=0.0)
    return lo, hi, vals


def weighted_statistics(X: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means (B, d) and ``ddof=1`` covariances (B, d, d) of the rows of X repeated W[b] times."""
    n = W.sum(1, keepdims=True)
    mu = W @ X / n
    d = X.shape[1]
    second = (W @ (X[:, :, None] * X[:, None, :]).reshape(len(X), d * d)).reshape(len(W), d, d)  # one GEMM
    cov = (second - n[:, :, None] * mu[:, :, None] * mu[:, None, :]) / (n[:, :, None] - 1)
    return mu, cov


def frechet_distance_weighted(X1: np.ndarray, W1: np.ndarray, X2: np.ndarray, W2: np.ndarray) -> np.ndarray:
    """d² of every resample b (rows repeated W1[b], W2[b] times) at once; for small d."""
    mu1, S1 = weighted_statistics(X1, W1)
    mu2, S2 = weighted_statistics(X2, W2)
    w, V = np.linalg.eigh(S1)
    R = (V * np.sqrt(np.clip(w, 0, None))[:, None, :]) @ np.swapaxes(V, 1, 2)
    M = R @ S2 @ R
    ev = np.linalg.eigvalsh((M + np.swapaxes(M, 1, 2)) / 2)
    tr = np.sqrt(np.clip(ev, 0, None)).sum(1)
    diff = mu1 - mu2
    return (diff * diff).sum(1) + np.trace(S1, axis1=1, axis2=2) + np.trace(S2, axis1=1, axis2=2) - 2 * tr


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    """(B, k) row indices → (B, n) multiplicities."""
    B = idx.shape[0]
    return np.bincount((idx + n * np.arange(B)[:, None]).ravel(), minlength=B * n).reshape(B, n).astype(np.float64)


def fd_infinity_interval(X1: np.ndarray, X2: np.ndarray, sizes: list[int], B: int, seed: int = 0,
                         level: float = 0.95, estimate: float | None = None,
                         workers: int | None = None) -> tuple[float, float, np.ndarray]:
    """Half-sampling interval of FD∞'s estimand: the FID of infinitely many generated images
    against this reference set (the reference statistics held fixed, as FD∞ holds them).

    Each of the B half-samples draws n1 // 2 generated images without replacement and refits
    FD∞ on it, with the subset sizes scaled by the same half (FD∞ is unbiased at any size,
    so the half-samples' spread, scaled by √(m/(n−m)), is that of the estimate). Resampling
    with replacement is not used: duplicated images change the 1/N slope FD∞ extrapolates.
    Batched for d ≤ 64; beyond, one FID per size and half-sample (:class:`SubsetFrechet`), the
    half-samples split over ``workers`` processes (default: the usable cores for large work).
    """
    from usbench.metrics.bootstrap import half_sampling_interval

    X1, X2 = check_features(X1, "generated features"), check_features(X2, "reference features")
    if B <= 0:
        return float("nan"), float("nan"), np.empty(0)
    if estimate is None:
        estimate = fd_infinity(X1, X2, sizes=sizes, seed=seed)[0]
    rng = np.random.default_rng(seed)
    n1, n2, d = len(X1), len(X2), X1.shape[1]
    m = n1 // 2
    half_sizes = sorted({max(2, int(round(s * m / n1))) for s in sizes})
    P = np.argsort(rng.random((B, n1)), axis=1)[:, :m]  # B half-samples, then random order inside
    Y = np.empty((len(half_sizes), B))
    if d <= 64:
        W2 = np.ones((B, n2))
        for k, size in enumerate(half_sizes):
            Y[k] = frechet_distance_weighted(X1, _counts(P[:, :size], n1), X2, W2)
    elif max(half_sizes) < d:  # s×s problems against the fixed reference, across processes
        rows = map_in_processes(_half_sample_fds, (SubsetFrechet(X1, X2), tuple(half_sizes)), list(P),
                                _workers_for(B * m, workers))
        Y[:] = np.array(rows).T
    else:
        for k, size in enumerate(half_sizes):
            Y[k] = [frechet_distance_from_features(X1[P[b, :size]], X2) for b in range(B)]
    vals = np.polyfit(1.0 / np.asarray(half_sizes, dtype=np.float64), Y, 1)[1]
    lo, hi = half_sampling_interval(vals, estimate, m, n1, level)
    return max(lo, 0.0), max(hi, 0.0), vals


def _half_sample_fds(subset_fd, half_sizes, order) -> list[float]:
    """FID of the first ``size`` images of one half-sample's random order, for each size."""
    return [subset_fd(order[:size]) for size in half_sizes]


PARALLEL_WORK = 100_000  # resamples × images below which one process is faster than starting two


def map_in_processes(fn, shared: tuple, items: list, workers: int) -> list:
    """``[fn(*shared, item) for item in items]``, split over ``workers`` processes, one BLAS
    thread each; ``shared`` (the big matrices) goes to each worker once, at its start.

    For loops of many mid-sized eigenproblems (bootstrap and half-sample refits): too small for
    threaded BLAS (its threads spin), and threads of one process do not help either: on this
    project's 2-core machine two threads calling eigvalsh on 497×497 matrices took as long as one
    (numpy's OpenBLAS serialises them); two processes 0.7×. The order of the results is that of
    ``items``, so the values do not depend on ``workers``."""
    if workers <= 1 or len(items) < 2:
        with single_blas_thread():
            return [fn(*shared, item) for item in items]
    from concurrent.futures import ProcessPoolExecutor

    chunks = [items[c[0]:c[-1] + 1] for c in np.array_split(np.arange(len(items)), workers * 4) if len(c)]
    with ProcessPoolExecutor(workers, initializer=_share, initargs=(fn, shared)) as pool:
        return [v for part in pool.map(_run_chunk, chunks) for v in part]


_SHARED: tuple = ()


def _share(fn, shared) -> None:
    global _SHARED
    _SHARED = (fn, shared)


def _run_chunk(items) -> list:
    fn, shared = _SHARED
    with single_blas_thread():
        return [fn(*shared, item) for item in items]


def _workers_for(work: int, workers: int | None) -> int:
    from usbench.common import usable_cores

    if workers is None:
        return usable_cores() if work >= PARALLEL_WORK else 1
    return max(1, workers)


def _gram_resamples(vals, rng, G11, G22, G12, g11, g22, norm, workers: int | None = None):
    """Fill ``vals`` with the d² of each resample. The multiplicities are drawn here, in order, from
    ``rng`` (the same draws as :func:`usbench.metrics.bootstrap.resample_counts` in a loop), then
    computed across processes (:func:`map_in_processes`; default: the usable cores when the work
    is large)."""
    from usbench.metrics.bootstrap import resample_counts

    n1, n2 = len(G11), len(G22)
    draws = [resample_counts(rng, (n1, n2)) for _ in range(len(vals))]
    workers = _workers_for(len(vals) * min(n1, n2), workers)
    vals[:] = map_in_processes(_gram_resample, (G11, G22, G12, g11, g22, norm), draws, workers)


def _gram_resample(G11, G22, G12, g11, g22, norm, draw) -> float:
    """d² of one resample given by multiplicities ``draw = (w1, w2)`` (see :func:`bootstrap_frechet`)."""
    w1, w2 = draw
    n1, n2 = len(G11), len(G22)
    u1, u2 = np.flatnonzero(w1), np.flatnonzero(w2)
    a1, a2 = w1[u1].astype(np.float64), w2[u2].astype(np.float64)
    # μ1·μ1, μ2·μ2, μ1·μ2 and the products of each drawn image with the other set's mean
    G12_uu = G12[u1][:, u2]  # (|u1|, |u2|), gathered once
    x1_mu2 = G12_uu @ a2 / n2  # x_i·μ2 for i in u1
    mu1_x2 = a1 @ G12_uu / n1  # μ1·y_j for j in u2
    mu1mu2 = a1 @ x1_mu2 / n1
    # μ·μ = wᵀGw / n²: a mat-vec on the whole Gram matrix is 10x cheaper than gathering G[u, u]
    f1, f2 = w1.astype(np.float64), w2.astype(np.float64)
    mu1mu1, mu2mu2 = f1 @ (G11 @ f1) / n1**2, f2 @ (G22 @ f2) / n2**2
    tr1 = (a1 @ g11[u1] - n1 * mu1mu1) / (n1 - 1)
    tr2 = (a2 @ g22[u2] - n2 * mu2mu2) / (n2 - 1)
    C = G12_uu - x1_mu2[:, None] - mu1_x2[None, :] + mu1mu2
    C *= np.sqrt(a1)[:, None] * np.sqrt(a2)[None, :] / norm
    M = C @ C.T if C.shape[0] <= C.shape[1] else C.T @ C
    ev = np.linalg.eigvalsh(M)
    nuclear = np.sqrt(np.clip(ev, 0, None)).sum()
    return float(mu1mu1 + mu2mu2 - 2 * mu1mu2 + tr1 + tr2 - 2 * nuclear)
