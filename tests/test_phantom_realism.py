"""The realism statistics (usbench.phantom.realism) on images whose answer is known, and the
calibrated phantom against real BUSI."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from usbench.phantom import preset_params, realism, simulate


def test_grain_width_of_gaussian_filtered_noise_is_its_autocorrelation_fwhm():
    # White noise filtered by a Gaussian of σ has a Gaussian autocorrelation of σ·√2: FWHM 2.355·√2·σ.
    rng = np.random.default_rng(0)
    noise = ndimage.gaussian_filter(rng.standard_normal((256, 256)), (1.0, 2.0), mode="wrap")
    image = np.clip(128 + 20 * noise / noise.std(), 0, 255).astype(np.uint8)
    axial, lateral = realism.autocorrelation_fwhm(image)
    assert axial == pytest.approx(2.355 * np.sqrt(2) * 1.0, rel=0.12)
    assert lateral == pytest.approx(2.355 * np.sqrt(2) * 2.0, rel=0.12)


def test_lesion_contrast_posterior_and_shape_of_a_drawn_lesion():
    z, x = np.mgrid[:128, :128]
    mask = ((z - 40) / 10.0) ** 2 + ((x - 64) / 20.0) ** 2 <= 1  # 21 rows × 41 columns
    image = np.full((128, 128), 100, np.uint8)
    image[mask] = 40
    assert realism.lesion_stats(image, mask)["contrast"] == pytest.approx(-60)
    image[51:80, 50:79] = 130  # brighter behind the lesion's centre (rows below it): enhancement
    s = realism.lesion_stats(image, mask)
    assert s["posterior"] == pytest.approx(30)
    assert s["aspect"] == pytest.approx(21 / 41, abs=1e-9)
    assert s["solidity"] > 0.93  # a convex ellipse (scikit-image: pixel area / area of the hull of the pixels)
    assert s["area"] == pytest.approx(np.pi * 10 * 20 / 128**2, rel=0.03)
    assert s["depth"] == pytest.approx(40 / 128, abs=0.01)


def test_gray_level_distance_and_depth_trend():
    ref = realism.pooled_histogram([np.full((8, 8), 110, np.uint8)])
    ramp = np.repeat(np.linspace(200, 20, 100)[:, None], 50, axis=1).astype(np.uint8)
    s = realism.image_stats(np.full((100, 50), 100, np.uint8), ref)
    assert s["w1"] == pytest.approx(10.0)
    r = realism.image_stats(ramp, None)
    assert r["far_near"] == pytest.approx(ramp[70:].mean() - ramp[:10].mean())
    assert r["far_near"] < -120
    assert np.all(np.diff(realism.depth_profile(ramp)) < 0)


def _busi_root() -> Path:
    base = Path(os.environ["USBENCH_TEST_DATA"]) if "USBENCH_TEST_DATA" in os.environ else \
        Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return base / "busi" / "Dataset_BUSI_with_GT"


def test_calibrated_default_is_closer_to_busi_than_version_1():
    """On a small sample: the default phantom's gray levels and depth profile are closer to real BUSI
    than the v0.1 preset's, and its mean level and near-to-far darkening lie in BUSI's 10-90 % range."""
    root = _busi_root()
    if not (root / "benign").is_dir():
        pytest.skip(f"real BUSI not found at {root} (set USBENCH_TEST_DATA)")
    from usbench.datasets.readers import read_busi

    busi = read_busi(root).take(20, seed=0)
    real = realism.set_stats("busi", realism.load_pairs(busi))
    labels = ["normal"] * 4 + ["benign"] * 10 + ["malignant"] * 6

    def phantom(preset):
        pairs = []
        for i, label in enumerate(labels):
            image, mask = simulate(label, 500 + i, 256, params=preset_params(preset))
            pairs.append((image, mask if mask.any() else None, label))
        return realism.set_stats(preset, pairs, real.histogram)

    new, old = phantom("busi"), phantom("v0.1")
    assert realism.histogram_w1(real, new) < 0.6 * realism.histogram_w1(real, old)
    gap = lambda s: np.abs(s.profiles.mean(0) - real.profiles.mean(0)).mean()
    assert gap(new) < 0.5 * gap(old)
    rows = {r.statistic: r for r in realism.compare(real, new) if r.label == "all"}
    assert rows["mean"].within and rows["far_near"].within
