"""The simulator against physics: speckle statistics, grain size, contrast, attenuation effects."""

from __future__ import annotations

import math

import numpy as np
import pytest

from _phantom_fixtures import RAYLEIGH_LOG_STD_DB, RAYLEIGH_SNR, autocov_fwhm_px, erode, mm_to_px, ring
from usbench.phantom import SimParams, build_phantom, render_envelope, simulate

# A field of view fine enough that the PSF is resolved (no display averaging), uniform beam width.
FINE = SimParams(depth_mm=7.68, width_mm=15.36, depth_of_field_mm=1e6)
FLAT = SimParams(anatomy="flat", attenuation=False)


def homogeneous(params: SimParams, seed: int, shape=(256, 256)) -> np.ndarray:
    return render_envelope(np.zeros(shape, np.float32), params, np.random.default_rng(seed))


def test_rayleigh_constants_are_the_published_values():
    assert RAYLEIGH_SNR == pytest.approx(1.91, abs=0.005)
    assert RAYLEIGH_LOG_STD_DB == pytest.approx(5.57, abs=0.005)


@pytest.mark.parametrize("params", [SimParams(), FINE], ids=["default-probe", "fine-grid"])
def test_fully_developed_speckle_is_rayleigh(params):
    env = np.concatenate([homogeneous(params, s).ravel() for s in range(3)])
    assert env.mean() / env.std() == pytest.approx(RAYLEIGH_SNR, rel=0.05)
    assert (20 * np.log10(env)).std() == pytest.approx(RAYLEIGH_LOG_STD_DB, rel=0.10)


def test_log_compressed_8bit_image_has_rayleigh_log_std():
    # A field of view where output pixels sample the PSF directly (no display averaging), no clipping;
    # the raw log image: no speckle-reduction filter, no per-image gain.
    params = SimParams(anatomy="flat", attenuation=False, depth_mm=14.0, width_mm=19.0, speckle_reduction_mm=0.0,
                       gain_sd_db=0.0)
    image, _ = simulate("normal", seed=4, size=256, params=params)
    std_db = image.astype(float).std() * params.dynamic_range_db / 255
    assert std_db == pytest.approx(RAYLEIGH_LOG_STD_DB, rel=0.10)


def test_too_few_scatterers_is_not_fully_developed():
    # K-distributed speckle (few scatterers per cell) has SNR below the Rayleigh 1.91 (Jakeman 1980).
    env = homogeneous(SimParams(scatterers_per_cell=0.3), 0)
    assert env.mean() / env.std() < 0.8 * RAYLEIGH_SNR


def test_axial_grain_size_follows_bandwidth():
    sizes = {}
    for bandwidth in (0.4, 0.8, 1.2):
        params = FINE.with_(fractional_bandwidth=bandwidth)
        env = homogeneous(params, 1)
        dz, _ = mm_to_px(env.shape, params)
        sizes[bandwidth] = autocov_fwhm_px(env**2, axis=0) * dz
        # Intensity autocovariance of a Gaussian PSF has the PSF's amplitude FWHM:
        # c / (2·π·B·f0) · 2√(2 ln 2) · ... as computed from the pulse spectrum, independent of our code path.
        sigma_f = bandwidth * 7.6e6 / (2 * math.sqrt(2 * math.log(2)))
        expected_mm = 2 * math.sqrt(2 * math.log(2)) * 1540 / (2 * 2 * math.pi * sigma_f) * 1e3
        assert sizes[bandwidth] == pytest.approx(expected_mm, rel=0.12)
    assert sizes[0.4] > sizes[0.8] > sizes[1.2]


def test_lateral_grain_size_follows_beam_width():
    sizes = {}
    for beam in (0.3, 0.6, 0.9):
        params = FINE.with_(beam_width_mm=beam)
        env = homogeneous(params, 2)
        _, dx = mm_to_px(env.shape, params)
        sizes[beam] = autocov_fwhm_px(env**2, axis=1) * dx
        assert sizes[beam] == pytest.approx(beam, rel=0.12)
    assert sizes[0.3] < sizes[0.6] < sizes[0.9]


def test_beam_widens_away_from_the_focus():
    params = SimParams(depth_mm=20.0, width_mm=20.0, focal_depth_mm=10.0, depth_of_field_mm=5.0)
    env = render_envelope(np.zeros((512, 256), np.float32), params, np.random.default_rng(3))
    _, dx = mm_to_px(env.shape, params)
    focus = autocov_fwhm_px(env[230:282] ** 2, axis=1) * dx  # around 10 mm
    deep = autocov_fwhm_px(env[460:512] ** 2, axis=1) * dx  # around 19 mm
    assert focus == pytest.approx(params.lateral_fwhm_mm(10.0), rel=0.15)
    assert deep == pytest.approx(float(params.lateral_fwhm_mm(19.0)), rel=0.15)


@pytest.mark.parametrize("contrast_db", [-6.0, -15.0, 6.0])
def test_inclusion_contrast_matches_its_echogenicity(contrast_db):
    h = w = 256
    z, x = np.mgrid[:h, :w]
    disk = (z - 128) ** 2 + (x - 128) ** 2 < 60**2
    echo = np.where(disk, contrast_db, 0.0).astype(np.float32)
    env = render_envelope(echo, SimParams(), np.random.default_rng(5))
    inside = (env[erode(disk, 6)] ** 2).mean()
    outside = (env[ring(disk, 6, 60)] ** 2).mean()
    assert 10 * np.log10(inside / outside) == pytest.approx(contrast_db, abs=0.8)


def _lesion_seed(label: str, kind: str, params: SimParams, size: int, min_atten: float = 0.0) -> int:
    for seed in range(200):
        ph = build_phantom(label, seed, (size, size), params)
        if ph.lesion.kind == kind and ph.lesion.halo_db == 0 and ph.lesion.atten >= min_atten and ph.mask.sum() > 400:
            return seed
    raise AssertionError(f"no {kind} in 200 seeds")


@pytest.mark.parametrize("label,kind", [("benign", "solid"), ("malignant", "carcinoma")])
def test_lesion_contrast_in_the_image_matches_its_spec(label, kind):
    size = 256
    seed = _lesion_seed(label, kind, FLAT, size)
    spec = build_phantom(label, seed, (size, size), FLAT).lesion
    image, mask = simulate(label, seed, size, params=FLAT)
    gray = image.astype(float)
    rows = np.nonzero(mask.any(axis=1))[0]
    beside = ring(mask, 12, 40)
    beside[rows[-1]:] = False  # not behind it (edge shadows)
    measured_db = (gray[erode(mask, 4)].mean() - gray[beside].mean()) * FLAT.dynamic_range_db / 255
    # Mean of a log-compressed speckle region = level in dB + a constant offset, the same in both regions.
    assert measured_db == pytest.approx(spec.echo_db, abs=1.5)


def _posterior_levels(label: str, kind: str, min_atten: float = 0.0):
    """Measured and expected level (dB) behind the lesion, relative to the same depth beside it."""
    params = SimParams(anatomy="flat", tgc_db_per_cm_mhz=0.7)  # tissue attenuation = TGC slope: no trend with depth
    size = 256
    seed = _lesion_seed(label, kind, params, size, min_atten)
    ph = build_phantom(label, seed, (size, size), params)
    env = render_envelope(ph.echo_db, params, np.random.default_rng(seed), ph.atten)
    intensity = env**2
    mask = ph.mask
    dz, dx = mm_to_px(mask.shape, params)
    rows = np.nonzero(mask.any(axis=1))[0]
    cols = np.nonzero(mask.any(axis=0))[0]
    band = slice(rows[-1] + int(1.5 / dz), min(rows[-1] + int(5 / dz), size))
    width = cols[-1] - cols[0]
    centre = np.arange(cols[0] + width // 3, cols[-1] - width // 3)
    far = np.r_[0:max(cols[0] - int(3 / dx), 0), min(cols[-1] + int(3 / dx), size):size]
    measured = 10 * np.log10(intensity[band][:, centre].mean() / intensity[band][:, far].mean())
    # Physics: the extra two-way loss through the lesion, 2·f0·(α_lesion − α_tissue)·thickness.
    thickness_cm = mask[:, centre].sum(axis=0) * dz / 10
    expected_per_column = -2 * params.center_frequency_mhz * (ph.lesion.atten - 0.7) * thickness_cm
    expected = 10 * np.log10(np.mean(10 ** (expected_per_column / 10)))
    return measured, expected


def test_posterior_enhancement_behind_cysts():
    measured, expected = _posterior_levels("benign", "cyst")
    assert expected > 3
    assert measured == pytest.approx(expected, abs=1.5)


def test_posterior_shadowing_behind_malignant_lesions():
    # BUSI's carcinomas range from shadowing to enhancement (posterior −41…+29 gray levels, 10-90 %),
    # so the calibrated phantom draws α from 0.5 to 1.7: take a strongly attenuating one.
    measured, expected = _posterior_levels("malignant", "carcinoma", min_atten=1.3)
    assert expected < -6
    assert measured == pytest.approx(expected, abs=2.0)


def test_posterior_effects_visible_in_default_images():
    """In the full anatomy, 8-bit images: brighter behind cysts, darker behind carcinomas (BI-RADS features)."""
    params = SimParams()
    diffs = {"cyst": [], "carcinoma": []}
    for label in ("benign", "malignant"):
        for seed in range(40):
            ph = build_phantom(label, seed, (128, 128), params)
            if ph.lesion.kind not in diffs or len(diffs[ph.lesion.kind]) >= 3 or ph.mask.sum() < 100:
                continue
            if ph.lesion.kind == "carcinoma" and ph.lesion.atten < 1.3:  # the shadowing ones (see above)
                continue
            image, mask = simulate(label, seed, 128, params=params)
            rows = np.nonzero(mask.any(axis=1))[0]
            cols = np.nonzero(mask.any(axis=0))[0]
            band = slice(rows[-1] + 4, min(rows[-1] + 20, 128))
            centre = slice(cols[0] + (cols[-1] - cols[0]) // 3, cols[-1] - (cols[-1] - cols[0]) // 3)
            far = np.r_[0:max(cols[0] - 12, 0), min(cols[-1] + 12, 128):128]
            diffs[ph.lesion.kind].append(image[band, centre].mean() - image[band][:, far].mean())
    assert len(diffs["cyst"]) >= 2 and len(diffs["carcinoma"]) >= 2
    assert min(diffs["cyst"]) > 10
    assert max(diffs["carcinoma"]) < -10


def test_tgc_leaves_only_a_mild_depth_trend():
    # receiver noise off: without TGC the far field falls ~22 dB, into the noise floor, which would
    # hide the attenuation law this checks (the noise floor has its own test below)
    params = SimParams(tgc_db_per_cm_mhz=0.7, tgc_sd_db_per_cm_mhz=0.0, gain_sd_db=0.0, noise_floor_db=None)
    image, _ = simulate("normal", 3, 256, params=params.with_(anatomy="flat"))
    # flat tissue attenuates 0.7 dB/cm/MHz, exactly what TGC compensates: no trend
    top, bottom = image[20:80].mean(), image[-60:].mean()
    assert abs(top - bottom) * params.dynamic_range_db / 255 < 1.0
    no_tgc = params.with_(anatomy="flat", tgc_db_per_cm_mhz=0.0)
    image, _ = simulate("normal", 3, 256, params=no_tgc)
    loss_db = (image[20:80].mean() - image[-60:].mean()) * params.dynamic_range_db / 255
    depth_cm = (np.mean([20, 80]) - np.mean([196, 256])) * -params.depth_mm / 256 / 10
    assert loss_db == pytest.approx(2 * 7.6 * 0.7 * depth_cm, rel=0.1)


def test_default_tgc_leaves_the_far_field_dark_by_the_uncompensated_loss():
    """The BUSI-calibrated default compensates 0.42 of the tissue's 0.7 dB/(cm·MHz): the image darkens
    with depth by 2·f0·(α − α_TGC)·Δz (what BUSI's dark far field needs, docs/phantom.md)."""
    params = SimParams(anatomy="flat", tgc_sd_db_per_cm_mhz=0.0, gain_sd_db=0.0)
    image, _ = simulate("normal", 3, 256, params=params)
    loss_db = (image[20:80].mean() - image[-60:].mean()) * params.dynamic_range_db / 255
    depth_cm = (np.mean([196, 256]) - np.mean([20, 80])) * params.depth_mm / 256 / 10
    assert loss_db == pytest.approx(2 * 7.6 * (0.7 - params.tgc_db_per_cm_mhz) * depth_cm, rel=0.1)


def test_scanner_gain_varies_per_image_by_its_spread():
    """Per-image gain is drawn with the given spread (BUSI's mean gray level varies 55-110, 10-90 %)."""
    from usbench.phantom.simulate import scanner_settings

    params = SimParams()
    gains = np.array([scanner_settings(params, s).gain_db for s in range(400)])
    assert gains.mean() == pytest.approx(params.gain_db, abs=0.6)
    assert gains.std() == pytest.approx(params.gain_sd_db, rel=0.1)
    assert scanner_settings(params.with_(gain_sd_db=0.0, tgc_sd_db_per_cm_mhz=0.0), 7) == params.with_(
        gain_sd_db=0.0, tgc_sd_db_per_cm_mhz=0.0)


def test_receiver_noise_sits_at_its_floor_above_black_and_removes_zero_clipped_zones():
    """With no echo at all the envelope is the receiver noise alone: circular complex Gaussian, so its
    intensity has mean 10^((black + floor)/10) (black: the level shown as gray 0) and a Rayleigh
    amplitude; with the noise off the same anechoic region is a flat zone of zeros."""
    from usbench.phantom.imaging import render_bmode, render_envelope

    params = SimParams(gain_sd_db=0.0, tgc_sd_db_per_cm_mhz=0.0, speckle_reduction_mm=0.0)
    silent = np.full((128, 128), -300.0, np.float32)  # echogenicity 10^-30: no signal above the noise
    env = render_envelope(silent, params, np.random.default_rng(0), atten=None)
    black_db = -(params.dynamic_range_db + params.gain_db)
    expected = 10 ** ((black_db + params.noise_floor_db) / 10)
    assert np.mean(env.astype(np.float64) ** 2) == pytest.approx(expected, rel=0.05)
    # Rayleigh: mean amplitude / rms amplitude = sqrt(pi)/2
    assert np.mean(env) / np.sqrt(np.mean(env.astype(np.float64) ** 2)) == pytest.approx(np.sqrt(np.pi) / 2, rel=0.02)
    shown = render_bmode(silent, params, np.random.default_rng(0))
    assert np.mean(shown == 0) < 0.25 and np.median(shown) > 0  # noise barely visible, not black
    off = render_bmode(silent, params.with_(noise_floor_db=None), np.random.default_rng(0))
    assert np.all(off == 0)
