"""The phantom generator backends: protocol, mask conditioning, config errors, and that the
mis-specified variants are mis-specified in the way they claim."""

from __future__ import annotations

import numpy as np
import pytest

from _phantom_fixtures import RAYLEIGH_LOG_STD_DB, autocov_fwhm_px, erode, ring
from usbench.errors import ConfigError, InputError, UnknownNameError, UsbenchError
from usbench.generators import GENERATORS, GenerationRequest, Generator, build_generator

VARIANTS = ("phantom", "phantom-blurred", "phantom-sparse", "phantom-flat")
# Homogeneous, unattenuated, and sampled finely enough that pixels are PSF samples.
# for 128 px: homogeneous, unattenuated, the raw 50 dB log image (no speckle reduction, fixed gain)
SPECKLE_ONLY = {"anatomy": "flat", "attenuation": False, "depth_mm": 7.0, "width_mm": 9.5, "dynamic_range_db": 50.0,
                "speckle_reduction_mm": 0.0, "gain_sd_db": 0.0}


def _requests(n=3, size=64, label="benign", mask=None):
    return [GenerationRequest(id=f"r{i}", label=label, seed=i, size=size, mask=mask) for i in range(n)]


@pytest.mark.parametrize("name", VARIANTS)
def test_registered_offline_mask_conditioned_backends(name):
    cls = GENERATORS.get(name)
    gen = build_generator(name, {})
    assert isinstance(gen, Generator)
    assert cls.name == name and cls.needs_weights is False and cls.mask_conditioned is True
    images = list(gen.generate(_requests(size=48)))
    assert len(images) == 3 and all(im.shape == (48, 48) and im.dtype == np.uint8 for im in images)
    again = list(build_generator(name, {}).generate(_requests(size=48)))
    assert all(np.array_equal(a, b) for a, b in zip(images, again))
    assert gen.fingerprint() == build_generator(name, {}).fingerprint()


def test_fingerprints_differ_between_variants_and_configs():
    prints = {build_generator(n, {}).fingerprint() for n in VARIANTS}
    prints.add(build_generator("phantom", {"center_frequency_mhz": 10}).fingerprint())
    prints.add(build_generator("phantom", {"engine": "pymust"}).fingerprint())
    assert len(prints) == len(VARIANTS) + 2


@pytest.mark.parametrize("label", ["benign", "malignant"])
def test_requests_with_masks_get_exactly_that_lesion(label):
    z, x = np.mgrid[:96, :96]
    mask = ((z - 40) / 14.0) ** 2 + ((x - 55) / 22.0) ** 2 < 1
    (image,) = build_generator("phantom", {}).generate(_requests(1, 96, label, mask))
    inside, around = image[erode(mask, 2)].mean(), image[ring(mask, 3, 10)].mean()
    assert inside < around - 15
    from usbench.phantom import simulate

    assert np.array_equal(image, simulate(label, 0, 96, mask=mask)[0])


def test_blurred_variant_has_coarse_speckle():
    grains = {}
    for name in ("phantom", "phantom-blurred"):
        (image,) = build_generator(name, SPECKLE_ONLY).generate(_requests(1, 128, "normal"))
        intensity = 10 ** (image.astype(float) / 255 * 5)  # undo the log compression (50 dB)
        grains[name] = autocov_fwhm_px(intensity, axis=1), autocov_fwhm_px(intensity, axis=0)
    # a 1.5× wider beam and a 1.5× longer pulse: grain 1.5× as wide laterally and axially (> 1.3×)
    assert grains["phantom-blurred"][0] > 1.3 * grains["phantom"][0]
    assert grains["phantom-blurred"][1] > 1.3 * grains["phantom"][1]


def test_sparse_variant_is_not_fully_developed_speckle():
    stds = {}
    for name in ("phantom", "phantom-sparse"):
        (image,) = build_generator(name, SPECKLE_ONLY).generate(_requests(1, 128, "normal"))
        stds[name] = image.astype(float).std() * 50 / 255
    assert stds["phantom"] == pytest.approx(RAYLEIGH_LOG_STD_DB, rel=0.1)
    assert stds["phantom-sparse"] > 1.4 * RAYLEIGH_LOG_STD_DB


def test_flat_variant_has_no_anatomy_and_no_posterior_effects():
    def block_spread(image):  # variation of 16×16 block means: anatomy, not speckle
        return image.reshape(8, 16, 8, 16).mean(axis=(1, 3)).std()

    full = list(build_generator("phantom", {}).generate(_requests(2, 128, "normal")))
    flat = list(build_generator("phantom-flat", {}).generate(_requests(2, 128, "normal")))
    assert max(block_spread(im) for im in flat) < 3 < min(block_spread(im) for im in full)
    from usbench.phantom import simulate

    checked = 0
    for seed in range(20):
        _, mask = simulate("malignant", seed, 128)
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        if cols[0] < 20 and cols[-1] > 107 or rows[-1] > 100:  # no tissue beside or behind it to compare
            continue
        checked += 1
        (image,) = build_generator("phantom-flat", {}).generate([GenerationRequest("m", "malignant", seed, 128)])
        behind = image[rows[-1] + 4:rows[-1] + 20, cols[0] + 3:cols[-1] - 2].mean()
        beside = image[rows[-1] + 4:rows[-1] + 20][:, np.r_[0:max(cols[0] - 10, 0), min(cols[-1] + 10, 128):128]].mean()
        assert abs(behind - beside) < 6  # < 1.2 dB: no shadow
    assert checked >= 3


@pytest.mark.parametrize(
    "config,kind",
    [
        ({"preset": "no-such-probe"}, UnknownNameError),
        ({"center_frequency_mhz": -5}, ConfigError),
        ({"fractional_bandwidth": 2.5}, ConfigError),
        ({"dynamic_range_db": 0}, ConfigError),
        ({"dynamic_range_db": -40.0}, ConfigError),
        ({"center_frequency_mhz": "high"}, ConfigError),
        ({"engine": "raytracer"}, ConfigError),
        ({"colour": "blue"}, ConfigError),
    ],
    ids=["unknown-preset", "negative-frequency", "bandwidth-over-200%", "zero-dr", "negative-dr", "wrong-type",
         "unknown-engine", "unknown-key"],
)
def test_bad_config_is_one_line_error(config, kind):
    with pytest.raises(kind) as err:
        build_generator("phantom", config)
    assert isinstance(err.value, UsbenchError) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "request_,kind",
    [
        (GenerationRequest("a", "benign", 0, 16), ConfigError),
        (GenerationRequest("a", "benign", 0, 64, mask=np.ones((32, 32), bool)), InputError),
        (GenerationRequest("a", "malignant", 0, 64, mask=np.zeros((64, 64), bool)), InputError),
        (GenerationRequest("a", "lymph-node", 0, 64), InputError),
    ],
    ids=["size-below-32", "mask-wrong-shape", "empty-mask-for-lesion", "unknown-label"],
)
def test_bad_request_is_one_line_error(request_, kind):
    with pytest.raises(kind) as err:
        list(build_generator("phantom", {}).generate([request_]))
    assert "\n" not in str(err.value)


def test_variants_are_farther_from_the_reference_than_the_faithful_phantom():
    """A simple two-sample statistic (scipy's 1-D Wasserstein distance between the distributions of
    horizontal gray-level differences, sensitive to speckle size, density and anatomy) must put the
    faithful phantom closer to an independent phantom-busi sample than any mis-specified variant."""
    from scipy.stats import wasserstein_distance

    from usbench.datasets.phantom import builtin_reference

    size = 96
    ref = builtin_reference(size=size, seed=0, counts={"normal": 2, "benign": 4, "malignant": 2})

    def diffs(images):
        return np.concatenate([np.abs(np.diff(im.astype(float), axis=1)).ravel() for im in images])

    def grays(images):
        return np.concatenate([im.ravel().astype(float) for im in images])

    real = [ref.load_image(rec) for rec in ref]
    requests = [GenerationRequest(rec.id, rec.label, 100 + i, size) for i, rec in enumerate(ref)]
    made = {name: list(build_generator(name, {}).generate(requests)) for name in VARIANTS}
    texture = {name: wasserstein_distance(diffs(real), diffs(ims)) for name, ims in made.items()}
    level = {name: wasserstein_distance(grays(real), grays(ims)) for name, ims in made.items()}
    for name in VARIANTS[1:]:
        assert texture[name] > 2 * texture["phantom"], texture
    for name in ("phantom-sparse", "phantom-flat"):  # their gray-level histograms are off too
        assert level[name] > 3 * level["phantom"], level


def test_a_call_spread_over_processes_gives_the_serial_images():
    """generate() runs its requests on the usable cores when there are enough of them; every
    image must still be the simulator's for that request's seed (and mask), in request order."""
    from usbench.phantom import simulate

    gen = build_generator("phantom", {})
    mask = np.zeros((32, 32), bool)
    mask[10:20, 8:22] = True
    reqs = [GenerationRequest(id=f"r{k}", label=["benign", "malignant", "normal"][k % 3], seed=1000 + k, size=32,
                              mask=mask if k % 5 == 0 and k % 3 != 2 else None) for k in range(50)]
    images = list(gen.generate(reqs))
    assert len(images) == len(reqs)
    for req, image in zip(reqs, images):
        expected, _ = simulate(req.label, req.seed, req.size, mask=req.mask, params=gen.params)
        np.testing.assert_array_equal(image, expected)
