"""Radiomic features (first-order, GLCM, NGTDM, GLRLM, GLSZM) in vectorised numpy, pyradiomics definitions.

pyradiomics is the reference implementation but does not pip-install on Python >= 3.10 without
``--no-build-isolation``; this module computes the same features with numpy/scipy only and is
checked against pyradiomics feature by feature in ``tests/test_metrics_radiomics.py`` (skipped
where pyradiomics is absent).

Settings (fixed, recorded in the fingerprint): the original 8-bit image, no resampling, no
intensity normalisation, fixed bin width ``bin_width`` (8 → at most 32 grey levels), 2-D GLCM at
distance 1 over 4 angles, symmetric, features averaged over angles; GLRLM over the same 4
angles; GLSZM with 8-connected zones; NGTDM over the 8-neighbourhood. Everything inside ``mask``
(whole image by default). Compared with FRD v1's pyradiomics configuration this leaves out the
LoG and wavelet image types, GLDM and the per-image z-score normalisation (which would hide
global brightness/contrast errors of a generator).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from usbench.errors import ConfigError, InputError

EPS = np.spacing(1)

FIRSTORDER = ["Energy", "TotalEnergy", "Entropy", "Minimum", "10Percentile", "90Percentile", "Maximum", "Mean",
              "Median", "InterquartileRange", "Range", "MeanAbsoluteDeviation", "RobustMeanAbsoluteDeviation",
              "RootMeanSquared", "Skewness", "Kurtosis", "Variance", "Uniformity"]
GLCM = ["Autocorrelation", "JointAverage", "ClusterProminence", "ClusterShade", "ClusterTendency", "Contrast",
        "Correlation", "DifferenceAverage", "DifferenceEntropy", "DifferenceVariance", "JointEnergy", "JointEntropy",
        "Imc1", "Imc2", "Idm", "Idmn", "Id", "Idn", "InverseVariance", "MaximumProbability", "SumEntropy", "SumSquares"]
NGTDM = ["Coarseness", "Contrast", "Busyness", "Complexity", "Strength"]
GLRLM = ["ShortRunEmphasis", "LongRunEmphasis", "GrayLevelNonUniformity", "GrayLevelNonUniformityNormalized",
         "RunLengthNonUniformity", "RunLengthNonUniformityNormalized", "RunPercentage", "GrayLevelVariance",
         "RunVariance", "RunEntropy", "LowGrayLevelRunEmphasis", "HighGrayLevelRunEmphasis",
         "ShortRunLowGrayLevelEmphasis", "ShortRunHighGrayLevelEmphasis", "LongRunLowGrayLevelEmphasis",
         "LongRunHighGrayLevelEmphasis"]
GLSZM = ["SmallAreaEmphasis", "LargeAreaEmphasis", "GrayLevelNonUniformity", "GrayLevelNonUniformityNormalized",
         "SizeZoneNonUniformity", "SizeZoneNonUniformityNormalized", "ZonePercentage", "GrayLevelVariance",
         "ZoneVariance", "ZoneEntropy", "LowGrayLevelZoneEmphasis", "HighGrayLevelZoneEmphasis",
         "SmallAreaLowGrayLevelEmphasis", "SmallAreaHighGrayLevelEmphasis", "LargeAreaLowGrayLevelEmphasis",
         "LargeAreaHighGrayLevelEmphasis"]
FEATURE_NAMES = ([f"firstorder_{n}" for n in FIRSTORDER] + [f"glcm_{n}" for n in GLCM] + [f"ngtdm_{n}" for n in NGTDM]
                 + [f"glrlm_{n}" for n in GLRLM] + [f"glszm_{n}" for n in GLSZM])


def discretize(values: np.ndarray, bin_width: float) -> np.ndarray:
    """pyradiomics' fixed-bin-width discretisation: levels 1, 2, … counted from floor(min / w)·w."""
    lo = values.min() - (values.min() % bin_width)
    return (np.floor((values - lo) / bin_width)).astype(np.int64) + 1


def firstorder_features(x: np.ndarray, levels: np.ndarray, shift: float = 0.0) -> list[float]:
    """The first-order features of pyradiomics (pixel spacing 1) on the ROI values ``x``."""
    x = x.astype(np.float64)
    n = x.size
    counts = np.bincount(levels)
    p = counts[counts > 0] / n
    mean = x.mean()
    dev = x - mean
    dev2 = dev * dev  # products, not ``**``: float powers are several times slower here
    m2 = dev2.mean()
    p10, p25, p50, p75, p90 = np.percentile(x, [10, 25, 50, 75, 90])
    robust = x[(x >= p10) & (x <= p90)]
    shifted = x + shift
    energy = np.dot(shifted, shifted)
    skew = np.dot(dev2, dev) / n / m2**1.5 if m2 > 0 else 0.0
    kurt = np.dot(dev2, dev2) / n / m2**2 if m2 > 0 else 0.0
    return [energy, energy, -np.sum(p * np.log2(p + EPS)), x.min(), p10, p90, x.max(), mean, p50, p75 - p25,
            x.max() - x.min(), np.abs(dev).mean(), np.abs(robust - robust.mean()).mean(),
            np.sqrt(energy / n), skew, kurt, m2, np.dot(p, p)]


def present_levels(values: np.ndarray) -> np.ndarray:
    """The sorted distinct grey levels (positive ints) in ``values``: ``numpy.unique`` by counting."""
    return np.flatnonzero(np.bincount(values.ravel()))


OFFSETS_2D = [(0, 1), (1, 1), (1, 0), (1, -1)]


def _pairs(L: np.ndarray, M: np.ndarray, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = L.shape
    ys, ye = max(0, -dy), h - max(0, dy)
    xs, xe = max(0, -dx), w - max(0, dx)
    a, b = L[ys:ye, xs:xe], L[ys + dy:ye + dy, xs + dx:xe + dx]
    ok = M[ys:ye, xs:xe] & M[ys + dy:ye + dy, xs + dx:xe + dx]
    return a[ok], b[ok]


def glcm_features(L: np.ndarray, M: np.ndarray) -> list[float]:
    """pyradiomics GLCM features (distance 1, 4 angles, symmetric, averaged over angles)."""
    present = present_levels(L[M])
    Ng = int(present.max())
    k = len(present)
    index = np.zeros(Ng + 1, dtype=np.int64)
    index[present] = np.arange(k)
    mats = []
    for dy, dx in OFFSETS_2D:
        a, b = _pairs(L, M, dy, dx)
        P = np.bincount(index[a] * k + index[b], minlength=k * k).reshape(k, k).astype(np.float64)
        P = P + P.T
        if P.sum() > 0:
            mats.append(P / P.sum())
    if not mats:
        return [np.nan] * len(GLCM)
    P = np.stack(mats)  # (A, k, k)
    A = len(mats)
    g = present.astype(np.float64)
    # Every feature that is a moment of i, j, i + j or |i - j| is read off the marginals or the
    # sum/difference distributions (length k or 2 Ng), not off the k x k matrix.
    px, py = P.sum(2), P.sum(1)  # (A, k)
    ux, uy = px @ g, py @ g
    Pf = P.reshape(A, k * k)
    sum_index = (present[:, None] + present[None, :] - 2).ravel()
    diff_index = np.abs(present[:, None] - present[None, :]).ravel()
    psum = np.stack([np.bincount(sum_index, weights=row, minlength=2 * Ng - 1) for row in Pf])
    pdiff = np.stack([np.bincount(diff_index, weights=row, minlength=Ng)[:Ng] for row in Pf])
    kdiff = np.arange(0, Ng, dtype=np.float64)
    ksum = np.arange(2, 2 * Ng + 1, dtype=np.float64)
    c = ksum[None, :] - (ux + uy)[:, None]  # (A, 2 Ng - 1)
    c2 = c * c
    varx = (px * (g[None, :] - ux[:, None]) ** 2).sum(1)
    vary = (py * (g[None, :] - uy[:, None]) ** 2).sum(1)
    sigx, sigy = np.sqrt(varx), np.sqrt(vary)
    autocorr = np.einsum("aij,i,j->a", P, g, g)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(sigx * sigy == 0, 1.0, (autocorr - ux * uy) / (sigx * sigy))
    da = pdiff @ kdiff
    HXY = -(Pf * np.log2(Pf + EPS)).sum(1)
    pxy = px[:, :, None] * py[:, None, :]
    log_pxy = np.log2(pxy + EPS)
    HXY1 = -(P * log_pxy).sum((1, 2))
    HXY2 = -(pxy * log_pxy).sum((1, 2))
    HX = -(px * np.log2(px + EPS)).sum(1)
    HY = -(py * np.log2(py + EPS)).sum(1)
    div = np.maximum(HX, HY)
    with np.errstate(divide="ignore", invalid="ignore"):
        imc1 = np.where(div == 0, 0.0, (HXY - HXY1) / div)
        imc2 = np.sqrt(np.clip(1 - np.exp(-2 * (HXY2 - HXY)), 0, None))
        invvar = (pdiff[:, 1:] / kdiff[1:] ** 2).sum(1)
    feats = [
        autocorr, ux, (psum * c2 * c2).sum(1), (psum * c2 * c).sum(1), (psum * c2).sum(1), pdiff @ kdiff**2,
        corr, da, -(pdiff * np.log2(pdiff + EPS)).sum(1), (pdiff * (kdiff - da[:, None]) ** 2).sum(1), (Pf**2).sum(1), HXY,
        imc1, imc2, (pdiff / (1 + kdiff**2)).sum(1), (pdiff / (1 + kdiff**2 / Ng**2)).sum(1), (pdiff / (1 + kdiff)).sum(1),
        (pdiff / (1 + kdiff / Ng)).sum(1), invvar, Pf.max(1), -(psum * np.log2(psum + EPS)).sum(1),
        varx,
    ]
    return [float(np.nanmean(f)) for f in feats]


def ngtdm_features(L: np.ndarray, M: np.ndarray) -> list[float]:
    """pyradiomics NGTDM features over the 8-neighbourhood (neighbours outside the ROI ignored)."""
    Lf = np.where(M, L, 0).astype(np.float64)
    Mf = M.astype(np.float64)
    pad_l, pad_m = np.pad(Lf, 1), np.pad(Mf, 1)
    h, w = L.shape
    tot = np.zeros((h, w))
    cnt = np.zeros((h, w))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            tot += pad_l[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
            cnt += pad_m[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
    valid = M & (cnt > 0)
    lv = L[valid]
    avg = tot[valid] / cnt[valid]
    Ng = int(L[M].max())
    n = np.bincount(lv, minlength=Ng + 1)[1:].astype(np.float64)
    s = np.bincount(lv, weights=np.abs(lv - avg), minlength=Ng + 1)[1:]
    keep = n > 0
    n, s = n[keep], s[keep]
    g = np.arange(1, Ng + 1, dtype=np.float64)[keep]
    Nvp = n.sum()
    p = n / Nvp
    Ngp = len(p)
    ps = (p * s).sum()
    coarse = 1e6 if ps == 0 else 1.0 / ps
    gi, gj = g[:, None], g[None, :]
    pi, pj = p[:, None], p[None, :]
    si, sj = s[:, None], s[None, :]
    contrast = 0.0 if Ngp == 1 else (pi * pj * (gi - gj) ** 2).sum() / (Ngp * (Ngp - 1)) * s.sum() / Nvp
    bden = np.abs(gi * pi - gj * pj).sum()
    busy = 0.0 if bden == 0 else ps / bden
    complexity = (np.abs(gi - gj) * (pi * si + pj * sj) / (pi + pj)).sum() / Nvp
    strength = 0.0 if s.sum() == 0 else ((pi + pj) * (gi - gj) ** 2).sum() / s.sum()
    return [coarse, contrast, busy, complexity, strength]


def size_matrix_features(P: np.ndarray, g: np.ndarray, sizes: np.ndarray, Np: float) -> list[float]:
    """The 16 features shared by GLRLM and GLSZM from a (grey level × run/zone size) count matrix.

    ``g``: the grey levels of the rows; ``sizes``: the run/zone sizes of the columns; ``Np``: pixels
    in the ROI. Features of one margin are read off the row or column sums, the four joint
    emphases are bilinear forms (``a @ P @ b``) and the entropy runs over the non-zero cells, so
    nothing is computed cell by cell on the (mostly empty) matrix.
    """
    i = g.astype(np.float64)
    j = sizes.astype(np.float64)
    i2, j2 = i * i, j * j
    Nz = P.sum()
    pg, pr = P.sum(1), P.sum(0)
    pgn, prn = pg / Nz, pr / Nz
    ui, uj = pgn @ i, prn @ j
    p = P[P > 0] / Nz
    return [
        (pr / j2).sum() / Nz, (pr @ j2) / Nz, (pg @ pg) / Nz, (pg @ pg) / Nz**2,
        (pr @ pr) / Nz, (pr @ pr) / Nz**2, Nz / Np, pgn @ (i - ui) ** 2, prn @ (j - uj) ** 2,
        -(p * np.log2(p + EPS)).sum(), (pg / i2).sum() / Nz, (pg @ i2) / Nz, (1 / i2) @ P @ (1 / j2) / Nz,
        i2 @ P @ (1 / j2) / Nz, (1 / i2) @ P @ j2 / Nz, i2 @ P @ j2 / Nz,
    ]


def _runs_1d(seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(level, length) of the runs of equal values in ``seq``; level 0 (outside the ROI) dropped."""
    change = np.flatnonzero(np.diff(seq)) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [len(seq)]]))
    levels = seq[starts]
    keep = levels > 0
    return levels[keep], lengths[keep]


def _lines(A: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """All lines of ``A`` along a direction as one 1-D array, lines separated by at least one 0.

    Diagonals are read as the columns of a sheared copy (row r shifted by h − 1 − r), so no
    Python loop over diagonals is needed.
    """
    h, w = A.shape
    if (dy, dx) == (0, 1):
        S = A
    elif (dy, dx) == (1, 0):
        S = A.T
    else:
        B = A if dx == 1 else A[:, ::-1]
        sheared = np.zeros((h, w + h - 1), A.dtype)
        rows = np.arange(h)[:, None]
        sheared[rows, np.arange(w)[None, :] + (h - 1 - rows)] = B
        S = sheared.T
    return np.pad(S, ((0, 0), (0, 1))).ravel()


def glrlm_features(L: np.ndarray, M: np.ndarray) -> list[float]:
    """pyradiomics GLRLM features (4 angles in 2-D, averaged over angles)."""
    A = np.where(M, L, 0)
    present = present_levels(L[M])
    index = np.zeros(int(present.max()) + 1, np.int64)
    index[present] = np.arange(len(present))
    Np = float(M.sum())
    per_angle = []
    for dy, dx in OFFSETS_2D:
        lv, ln = _runs_1d(_lines(A, dy, dx))
        width = int(ln.max())
        P = np.bincount(index[lv] * width + ln - 1, minlength=len(present) * width).reshape(len(present), width).astype(np.float64)
        per_angle.append(_drop_empty_and_score(P, present, Np))
    return [float(v) for v in np.mean(np.array(per_angle), axis=0)]


def _drop_empty_and_score(P: np.ndarray, g: np.ndarray, Np: float) -> list[float]:
    rows = P.sum(1) > 0
    P, g = P[rows], g[rows]
    sizes = np.arange(1, P.shape[1] + 1)
    cols = P.sum(0) > 0
    # size columns that never occur are dropped like pyradiomics does, keeping the true sizes
    return size_matrix_features(P[:, cols], g, sizes[cols], Np)


def glszm_features(L: np.ndarray, M: np.ndarray) -> list[float]:
    """pyradiomics GLSZM features: zones are 8-connected regions of one grey level."""
    from skimage.measure import label

    present = present_levels(L[M])
    index = np.zeros(int(present.max()) + 1, np.int64)
    index[present] = np.arange(len(present))
    A = np.where(M, L, 0)
    lab = label(A, background=0, connectivity=2)  # neighbours of equal value form one zone
    flat = lab.ravel()
    sizes = np.bincount(flat)[1:]
    first = np.zeros(len(sizes) + 1, np.int64)
    first[flat[::-1]] = np.arange(flat.size)[::-1]  # one pixel of every zone → its grey level
    lv = index[A.ravel()[first[1:]]]
    width = int(sizes.max())
    P = np.bincount(lv * width + sizes - 1, minlength=len(present) * width).reshape(len(present), width).astype(np.float64)
    return _drop_empty_and_score(P, present, float(M.sum()))


def radiomic_features(image: np.ndarray, mask: np.ndarray | None = None, bin_width: float = 8.0,
                      shift: float = 0.0) -> np.ndarray:
    """The :data:`FEATURE_NAMES` vector of one 2-D image inside ``mask`` (whole image by default).

    Example:
        >>> import numpy as np
        >>> img = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))
        >>> f = radiomic_features(img)
        >>> len(f) == len(FEATURE_NAMES), float(f[FEATURE_NAMES.index("firstorder_Mean")])
        (True, 120.0)
    """
    img = np.asarray(image)
    if img.ndim != 2:
        raise InputError(f"radiomics needs 2-D grayscale images, got shape {img.shape}", "convert to grayscale")
    M = np.ones(img.shape, bool) if mask is None else np.asarray(mask, bool)
    if M.sum() < 2:
        raise InputError("radiomics needs a region of at least 2 pixels", "check the mask")
    x = img[M].astype(np.float64)
    L = np.zeros(img.shape, np.int64)
    L[M] = discretize(x, bin_width)
    return np.array(firstorder_features(x, L[M], shift) + glcm_features(L, M) + ngtdm_features(L, M)
                    + glrlm_features(L, M) + glszm_features(L, M), dtype=np.float64)


class RadiomicsExtractor:
    """Radiomic features of whole images (see the module docstring). No weights.

    Options: ``bin_width`` (8), ``workers`` (processes; default: all cores, 1 for small sets).
    """

    name = "radiomics"
    feature_names = FEATURE_NAMES

    def __init__(self, bin_width: float = 8.0, workers: int | None = None):
        if bin_width <= 0:
            raise ConfigError(f"radiomics bin_width must be > 0, got {bin_width}", "use e.g. 8 for 8-bit images")
        self.bin_width = float(bin_width)
        self.workers = workers

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> "RadiomicsExtractor":
        unknown = set(options) - {"bin_width", "workers"}
        if unknown:
            raise ConfigError(f"unknown radiomics extractor option(s) {sorted(unknown)}", "known: bin_width, workers")
        return cls(**options)

    def fingerprint(self) -> str:
        return f"radiomics-v1|original|binwidth={self.bin_width}|firstorder+glcm+ngtdm+glrlm+glszm|{len(FEATURE_NAMES)}"

    def provenance(self) -> dict[str, Any]:
        return {"extractor": self.name, "bin_width": self.bin_width, "features": len(FEATURE_NAMES)}

    def extract(self, images: Iterable[np.ndarray], n: int) -> np.ndarray:
        import os
        from concurrent.futures import ProcessPoolExecutor

        workers = self.workers if self.workers is not None else (os.cpu_count() or 1)
        shapes: set = set()

        def checked(it):
            for im in it:
                shapes.add(im.shape)
                if len(shapes) > 1:
                    raise InputError(f"images of mixed sizes in one set: {sorted(shapes)}", "resize them to one size")
                yield im

        from usbench.common import one_thread_per_worker, single_blas_thread

        if workers <= 1 or n < 64:
            with single_blas_thread():
                rows = [radiomic_features(im, None, self.bin_width) for im in checked(images)]
        else:
            with ProcessPoolExecutor(workers, initializer=one_thread_per_worker) as pool:
                rows = list(pool.map(_features_default, checked(images), [self.bin_width] * n, chunksize=16))
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES))


def _features_default(im: np.ndarray, bin_width: float) -> np.ndarray:
    return radiomic_features(im, None, bin_width)
