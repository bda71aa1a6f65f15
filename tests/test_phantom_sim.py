"""Simulator behaviour: determinism, exact masks, BI-RADS shape descriptors, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import measure

from _phantom_fixtures import erode, ring
from usbench.errors import ConfigError, InputError, UnknownNameError, UsbenchError
from usbench.phantom import SimParams, build_phantom, preset_params, simulate


@pytest.mark.parametrize("label", ["normal", "benign", "malignant"])
def test_same_seed_same_image_other_seed_other_image(label):
    a, ma = simulate(label, 7, 64)
    b, mb = simulate(label, 7, 64)
    c, _ = simulate(label, 8, 64)
    assert a.dtype == np.uint8 and a.shape == (64, 64) and ma.dtype == bool
    assert np.array_equal(a, b) and np.array_equal(ma, mb)
    assert not np.array_equal(a, c)


def test_normal_images_have_empty_masks_and_lesion_images_do_not():
    assert not simulate("normal", 1, 64)[1].any()
    for label in ("benign", "malignant"):
        for seed in range(5):
            assert simulate(label, seed, 64)[1].any()


@pytest.mark.parametrize("label", ["benign", "malignant"])
def test_the_mask_is_exactly_the_rendered_lesion(label):
    # The lesion's attenuation value occurs nowhere in the anatomy, so it marks the lesion's pixels.
    for seed in range(4):
        ph = build_phantom(label, seed, (128, 128), SimParams())
        assert np.array_equal(ph.atten == np.float32(ph.lesion.atten), ph.mask)
        image, mask = simulate(label, seed, 128)
        assert np.array_equal(mask, ph.mask)
        # and the image shows it there: hypoechoic inside compared with the tissue around it (by less
        # than in version 1: BUSI's solid lesions can be faint, 10 % are < 23 gray levels below their ring)
        assert image[erode(mask, 2)].mean() < image[ring(mask, 3, 12)].mean() - 5


def _star_mask(size: int) -> np.ndarray:
    z, x = np.mgrid[:size, :size]
    theta = np.arctan2(z - size * 0.45, x - size * 0.5)
    r = np.hypot(z - size * 0.45, x - size * 0.5)
    return r < size * 0.16 * (1 + 0.35 * np.cos(5 * theta))


@pytest.mark.parametrize("label", ["benign", "malignant"])
def test_mask_conditioned_lesion_has_exactly_the_given_shape(label):
    given = _star_mask(96)
    image, mask = simulate(label, 3, 96, mask=given)
    assert np.array_equal(mask, given)
    ph = build_phantom(label, 3, (96, 96), SimParams(), mask=given)
    assert np.array_equal(ph.atten == np.float32(ph.lesion.atten), given)
    assert image[erode(given, 2)].mean() < image[ring(given, 3, 10)].mean() - 15
    again, _ = simulate(label, 3, 96, mask=given.astype(np.uint8) * 255)  # any nonzero is lesion
    assert np.array_equal(image, again)


def _shape_stats(label: str, n: int, params: SimParams | None = None):
    params = params or SimParams()
    ratios, solidity = [], []
    for seed in range(n):
        mask = build_phantom(label, seed, (192, 192), params).mask
        rows, cols = np.nonzero(mask)
        ratios.append((np.ptp(rows) + 1) / (np.ptp(cols) + 1))  # taller-than-wide ratio in pixels
        props = measure.regionprops(mask.astype(np.uint8))[0]
        solidity.append(props.solidity)
    return np.array(ratios), np.array(solidity)


def test_bi_rads_shape_descriptors():
    """Benign parallel and circumscribed, malignant less parallel and irregular, in BUSI's proportions.

    BUSI's masks at the 256×256 protocol (bench/phantom_realism.py --mask-stats): 14 % of benign and
    30 % of malignant lesions are taller than wide (pixels), median bounding-box height/width 0.71
    and 0.87; solidity median 0.970 and 0.881."""
    benign_ratio, benign_solidity = _shape_stats("benign", 60)
    malignant_ratio, malignant_solidity = _shape_stats("malignant", 60)
    assert np.mean(benign_ratio > 1) == pytest.approx(0.14, abs=0.12)
    assert np.mean(malignant_ratio > 1) == pytest.approx(0.30, abs=0.15)
    assert np.median(malignant_ratio) > np.median(benign_ratio) + 0.05
    # circumscribed vs irregular/spiculated margins: malignant outlines are less convex
    assert np.median(benign_solidity) > 0.97
    assert np.median(malignant_solidity) < np.median(benign_solidity) - 0.03


def test_v01_preset_keeps_the_taller_than_wide_carcinomas_of_simulator_version_1():
    malignant_ratio, _ = _shape_stats("malignant", 20, preset_params("v0.1"))
    # version 1 drew mm aspects 0.95-1.45; in pixels of its 30 × 38.4 mm field that is × 1.28
    assert np.mean(malignant_ratio > 1) >= 0.7


def test_numpy_integers_are_accepted():
    a, _ = simulate("benign", np.int64(5), np.int64(48))
    assert np.array_equal(a, simulate("benign", 5, 48)[0])


def test_presets_set_the_probe():
    assert preset_params("l11-5v").center_frequency_mhz == 7.6
    assert preset_params("L12-3v").fractional_bandwidth == 0.93
    assert preset_params("l11-5v", center_frequency_mhz=5.0).center_frequency_mhz == 5.0


@pytest.mark.parametrize(
    "call,kind",
    [
        (lambda: preset_params("c5-2v-imaginary"), UnknownNameError),
        (lambda: preset_params("l11-5v", center_frequency_mhz=-7.6), ConfigError),
        (lambda: preset_params("l11-5v", fractional_bandwidth=2.5), ConfigError),
        (lambda: preset_params("l11-5v", dynamic_range_db=0.0), ConfigError),
        (lambda: preset_params("l11-5v", dynamic_range_db=-10.0), ConfigError),
        (lambda: simulate("benign", 0, 16), ConfigError),
        (lambda: simulate("benign", 0, 64, mask=np.ones((32, 32), bool)), InputError),
        (lambda: simulate("benign", 0, 64, mask=np.zeros((64, 64), bool)), InputError),
        (lambda: simulate("malignant", 0, 64, mask=np.zeros((64, 64), bool)), InputError),
        (lambda: simulate("normal", 0, 64, mask=np.ones((64, 64), bool)), InputError),
        (lambda: simulate("cancer", 0, 64), InputError),
        (lambda: simulate("benign", -1, 64), InputError),
        (lambda: simulate("benign", 0, 64, engine="raytracer"), ConfigError),
        (lambda: simulate("benign", 0, 64, params=SimParams(center_frequency_mhz=-1.0)), ConfigError),
    ],
    ids=["unknown-preset", "negative-frequency", "bandwidth-over-200%", "zero-dynamic-range",
         "negative-dynamic-range", "size-below-32", "mask-wrong-shape", "empty-mask-benign",
         "empty-mask-malignant", "mask-on-normal", "unknown-label", "negative-seed", "unknown-engine", "params-negative-frequency"],
)
def test_bad_input_is_one_line_usbench_error(call, kind):
    with pytest.raises(kind) as err:
        call()
    assert isinstance(err.value, UsbenchError)
    assert "\n" not in str(err.value) and len(str(err.value)) > 20
