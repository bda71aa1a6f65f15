"""Radiomic features: parity with pyradiomics (where installed), speed-relevant shape checks."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from usbench.errors import InputError
from usbench.metrics.radiomics import FEATURE_NAMES, RadiomicsExtractor, radiomic_features


def texture(seed: int, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = gaussian_filter(rng.normal(128, 60, (size, size)), rng.uniform(0.8, 2.0)) * 2 - 128
    return np.clip(img, 0, 255).astype(np.uint8)


def pyradiomics_features(img: np.ndarray, mask: np.ndarray, bin_width: float) -> dict[str, float]:
    sitk = pytest.importorskip("SimpleITK", reason="pyradiomics parity needs SimpleITK (installed with pyradiomics)")
    radiomics = pytest.importorskip(
        "radiomics", reason="pyradiomics is not installed (pip install numpy versioneer && "
                            "pip install --no-build-isolation pyradiomics)")
    from radiomics import firstorder, glcm, glrlm, glszm, ngtdm

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    si = sitk.JoinSeries(sitk.GetImageFromArray(img))
    sm = sitk.JoinSeries(sitk.GetImageFromArray(mask.astype(np.int32)))
    out = {}
    for cls, prefix in ((firstorder.RadiomicsFirstOrder, "firstorder"), (glcm.RadiomicsGLCM, "glcm"),
                        (ngtdm.RadiomicsNGTDM, "ngtdm"), (glrlm.RadiomicsGLRLM, "glrlm"), (glszm.RadiomicsGLSZM, "glszm")):
        ext = cls(si, sm, binWidth=bin_width, force2D=True, label=1)
        ext.enableAllFeatures()
        out.update({f"{prefix}_{k}": float(v) for k, v in ext.execute().items()})
    return out


@pytest.mark.parametrize("seed,bin_width,masked", [(0, 8, False), (1, 5, True), (2, 16, True)])
def test_features_equal_pyradiomics(seed, bin_width, masked):
    img = texture(seed)
    mask = np.ones(img.shape, bool)
    if masked:  # an irregular lesion-like region
        yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
        mask = ((yy - 20) ** 2 / 150 + (xx - 26) ** 2 / 90) < 1
    else:
        mask[0, 0] = False  # pyradiomics refuses a mask that covers the whole image
    ref = pyradiomics_features(img, mask, bin_width)
    ours = dict(zip(FEATURE_NAMES, radiomic_features(img, mask, bin_width)))
    for name in FEATURE_NAMES:
        assert ours[name] == pytest.approx(ref[name], rel=1e-7, abs=1e-10), name


def test_extractor_shape_and_determinism():
    ext = RadiomicsExtractor.from_config({"workers": 1})
    imgs = [texture(s, 32) for s in range(3)]
    a = ext.extract(iter(imgs), 3)
    b = ext.extract(iter(imgs), 3)
    assert a.shape == (3, len(FEATURE_NAMES)) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all()


def test_mean_feature_is_the_pixel_mean():
    img = texture(5, 32)
    f = dict(zip(FEATURE_NAMES, radiomic_features(img)))
    assert f["firstorder_Mean"] == pytest.approx(img.mean())
    assert f["firstorder_Variance"] == pytest.approx(img.var())


def test_bad_inputs():
    ext = RadiomicsExtractor(workers=1)
    with pytest.raises(InputError, match="mixed sizes"):
        ext.extract(iter([np.zeros((8, 8), np.uint8), np.zeros((9, 8), np.uint8)]), 2)
    with pytest.raises(InputError, match="2-D"):
        radiomic_features(np.zeros((4, 4, 3), np.uint8))
