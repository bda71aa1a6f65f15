"""How much a phantom set looks like a real one: interpretable image statistics, each with the real
set's own inter-image spread, and the radiomics distance with its real-vs-real floor.

Layers: per-image measurements (:func:`image_stats`) → per-set tables (:func:`set_stats`) →
comparison against the real set's spread (:func:`compare`). Every image is first resized to the
benchmark's square protocol (bicubic, masks nearest, :func:`usbench.imageset.resize_gray`), so the
statistics describe what the metrics see. Lengths are in pixels of that grid.

Statistics (per image unless said otherwise):

- ``mean``, ``std``: gray level; ``w1``: Wasserstein-1 distance (gray levels) of the image's
  histogram to the pooled histogram of the real set;
- ``near``, ``far``, ``far_near``: mean of the top 10 % and the bottom 30 % of rows, and their
  difference (depth attenuation and TGC, near-field brightness); ``profile``: row means in 32
  depth bins (the curve of the figure);
- ``grain_axial``, ``grain_lateral``: full width at half maximum (px) of the autocorrelation of the
  texture (image minus its 6-px Gaussian local mean), along depth and across;
- lesions: ``contrast`` (mean inside − mean of a ring around it), ``posterior`` (mean below the
  lesion − mean at the same depth beside it; > 0 enhancement, < 0 shadowing), ``area`` (fraction of
  the image), ``aspect`` (bounding-box height / width: > 1 is taller than wide), ``solidity``
  (area / convex hull area, scikit-image), ``depth`` (centroid row / height).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
from scipy import ndimage
from scipy.stats import wasserstein_distance

SCALARS = ("mean", "std", "w1", "near", "far", "far_near", "grain_axial", "grain_lateral")
LESION_SCALARS = ("contrast", "posterior", "area", "aspect", "solidity", "depth")
PROFILE_BINS = 32


@dataclass
class SetStats:
    """Per-image statistics of one set: ``values[name]`` has one entry per image (NaN when undefined)."""

    name: str
    labels: np.ndarray
    values: dict[str, np.ndarray]
    profiles: np.ndarray  # (n, PROFILE_BINS)
    histogram: np.ndarray  # pooled, 256 bins, sums to 1
    extra: dict = field(default_factory=dict)


def load_pairs(imageset, size: int = 256) -> list[tuple[np.ndarray, np.ndarray | None, str]]:
    """(uint8 image, bool mask or None, label) of every record, at ``size``×``size``."""
    return [(imageset.load_image(rec, size), imageset.load_mask(rec, size), rec.label) for rec in imageset]


def autocorrelation_fwhm(image: np.ndarray, local_sigma: float = 6.0) -> tuple[float, float]:
    """FWHM (px) of the texture autocorrelation along rows (axial) and columns (lateral)."""
    x = image.astype(np.float64)
    r = x - ndimage.gaussian_filter(x, local_sigma, mode="reflect")
    h, w = r.shape
    spec = np.fft.rfft2(r, s=(2 * h, 2 * w))
    ac = np.fft.irfft2(np.abs(spec) ** 2, s=(2 * h, 2 * w))
    if ac[0, 0] <= 0:
        return float("nan"), float("nan")
    ac /= ac[0, 0]
    return _half_width(ac[: h // 2, 0]) * 2, _half_width(ac[0, : w // 2]) * 2


def _half_width(curve: np.ndarray) -> float:
    below = np.nonzero(curve < 0.5)[0]
    if len(below) == 0:
        return float("nan")
    k = int(below[0])
    a, b = curve[k - 1], curve[k]
    return float(k - 1 + (a - 0.5) / (a - b))


def lesion_stats(image: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Contrast, posterior effect and shape of the lesion in ``mask`` (NaN where undefined)."""
    from skimage.measure import regionprops

    x = image.astype(np.float64)
    h, w = mask.shape
    rows, cols = np.nonzero(mask)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    bh, bw = r1 - r0, c1 - c0
    radius = max(3, int(round(0.25 * np.sqrt(mask.sum() / np.pi))))
    ring = ndimage.binary_dilation(mask, iterations=radius) & ~mask
    out = {"contrast": float(x[mask].mean() - x[ring].mean()) if ring.any() else float("nan")}
    # Posterior: below the central half of the lesion, down one lesion height; beside it at the same rows.
    below = x[r1:min(h, r1 + bh), c0 + bw // 4:max(c0 + bw // 4 + 1, c1 - bw // 4)]
    side_rows = slice(r1, min(h, r1 + bh))
    gap = max(2, bw // 4)
    left = x[side_rows, max(0, c0 - gap - bw // 2):max(0, c0 - gap)]
    right = x[side_rows, min(w, c1 + gap):min(w, c1 + gap + bw // 2)]
    beside = np.concatenate([left.ravel(), right.ravel()])
    out["posterior"] = float(below.mean() - beside.mean()) if below.size and beside.size else float("nan")
    props = regionprops(mask.astype(np.uint8))[0]
    out.update(area=float(mask.sum() / mask.size), aspect=float(bh / bw), solidity=float(props.solidity),
               depth=float(rows.mean() / h))
    return out


def image_stats(image: np.ndarray, reference_hist: np.ndarray | None) -> dict[str, float]:
    x = image.astype(np.float64)
    h = x.shape[0]
    near, far = x[: max(1, h // 10)].mean(), x[int(0.7 * h):].mean()
    ga, gl = autocorrelation_fwhm(image)
    out = {"mean": float(x.mean()), "std": float(x.std()), "near": float(near), "far": float(far),
           "far_near": float(far - near), "grain_axial": ga, "grain_lateral": gl, "w1": float("nan")}
    if reference_hist is not None:
        hist = np.bincount(image.ravel(), minlength=256)
        out["w1"] = float(wasserstein_distance(np.arange(256), np.arange(256), hist, reference_hist))
    return out


def depth_profile(image: np.ndarray, bins: int = PROFILE_BINS) -> np.ndarray:
    rows = image.astype(np.float64).mean(axis=1)
    edges = np.linspace(0, len(rows), bins + 1).astype(int)
    return np.array([rows[a:b].mean() for a, b in zip(edges[:-1], edges[1:])])


def pooled_histogram(images: Iterable[np.ndarray]) -> np.ndarray:
    total = np.zeros(256)
    for im in images:
        total += np.bincount(im.ravel(), minlength=256)
    return total / total.sum()


def set_stats(name: str, pairs: list[tuple[np.ndarray, np.ndarray | None, str]],
              reference_hist: np.ndarray | None = None) -> SetStats:
    """All per-image statistics of a set; ``reference_hist`` (the real set's pooled histogram) for ``w1``.

    Without ``reference_hist`` the set is its own reference (the real set's spread of ``w1``)."""
    hist = pooled_histogram(im for im, _, _ in pairs)
    ref = hist if reference_hist is None else reference_hist
    values = {k: [] for k in SCALARS + LESION_SCALARS}
    profiles = []
    for image, mask, _ in pairs:
        s = image_stats(image, ref)
        if mask is not None and mask.any():
            s.update(lesion_stats(image, mask))
        for k in values:
            values[k].append(s.get(k, float("nan")))
        profiles.append(depth_profile(image))
    return SetStats(name, np.array([label for _, _, label in pairs]), {k: np.array(v) for k, v in values.items()},
                    np.array(profiles), hist)


def spread(v: np.ndarray) -> tuple[float, float, float]:
    """(10th percentile, median, 90th percentile) of the finite values."""
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return (float("nan"),) * 3
    p10, p50, p90 = np.percentile(v, [10, 50, 90])
    return float(p10), float(p50), float(p90)


@dataclass
class Row:
    statistic: str
    label: str  # "all" or a class
    real: tuple[float, float, float]  # p10, median, p90
    phantom: tuple[float, float, float]

    @property
    def within(self) -> bool:
        """The phantom's median lies inside the real set's 10-90 % inter-image range."""
        return bool(self.real[0] <= self.phantom[1] <= self.real[2])


def compare(real: SetStats, phantom: SetStats) -> list[Row]:
    """One row per statistic (and per label for the lesion statistics), real spread beside phantom."""
    rows = []
    for k in SCALARS:
        rows.append(Row(k, "all", spread(real.values[k]), spread(phantom.values[k])))
    for label in ("benign", "malignant"):
        for k in LESION_SCALARS:
            rows.append(Row(k, label, spread(real.values[k][real.labels == label]),
                            spread(phantom.values[k][phantom.labels == label])))
    return rows


def profile_within(real: SetStats, phantom: SetStats) -> float:
    """Fraction of depth bins where the phantom's mean row level is within ±1 s.d. of the real images'."""
    mu, sd = real.profiles.mean(0), real.profiles.std(0)
    return float(np.mean(np.abs(phantom.profiles.mean(0) - mu) <= sd))


def histogram_w1(a: SetStats, b: SetStats) -> float:
    """Wasserstein-1 distance (gray levels) between the pooled histograms of two sets."""
    g = np.arange(256)
    return float(wasserstein_distance(g, g, a.histogram, b.histogram))


def radiomics_d2(generated: list[np.ndarray], reference: list[np.ndarray], workers: int | None = None) -> float:
    """d² of the FRD metric (usbench.metrics: radiomic features, z-scored on the reference, Fréchet distance)."""
    from usbench.metrics.distribution import frd_normalize
    from usbench.metrics.frechet import frechet_distance_from_features
    from usbench.metrics.radiomics import RadiomicsExtractor

    ex = RadiomicsExtractor(workers=workers)
    g = ex.extract(iter(generated), len(generated))
    r = ex.extract(iter(reference), len(reference))
    g, r, _ = frd_normalize(g, r)
    return float(frechet_distance_from_features(g, r))
