"""Breast anatomy as two maps on the pixel grid: echogenicity (dB, parenchyma = 0) and attenuation.

Layers from the skin down, each with randomised thickness and undulating boundaries:
skin (bright epidermis line over echogenic dermis) → subcutaneous fat (hypoechoic lobules with
thin echogenic septa) crossed by Cooper's ligaments (thin curved echogenic lines that rise from
tent-like peaks of the parenchyma) → fibroglandular parenchyma (hyperechoic, textured, layered
parallel to the skin, with fat islands) → retromammary fat → pectoral muscle (hypoechoic with
oblique striations under a bright fascia).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from usbench.phantom.imaging import pixel_grid
from usbench.phantom.params import SimParams

# (echogenicity dB relative to parenchyma, attenuation dB/(cm·MHz)); values from the usual
# sonographic appearance (fat hypoechoic, fibroglandular tissue and ligaments echogenic) and
# soft-tissue attenuation 0.5-1 dB/(cm·MHz).
TISSUE = {
    "epidermis": (10.0, 1.0),
    "dermis": (4.0, 1.0),
    "fat": (-11.0, 0.6),
    "septum": (-1.0, 0.6),
    "ligament": (5.0, 0.8),
    "parenchyma": (0.0, 0.85),
    "fat_island": (-10.0, 0.6),
    "retromammary": (-12.0, 0.6),
    "fascia": (7.0, 1.0),
    "muscle": (-7.0, 1.0),
    "flat": (0.0, 0.7),
}


@dataclass
class Anatomy:
    echo_db: np.ndarray  # float32 (h, w)
    atten: np.ndarray  # float32 (h, w), dB/(cm·MHz)
    parenchyma_top: np.ndarray  # mm per column
    parenchyma_bottom: np.ndarray  # mm per column


def smooth_noise(shape: tuple[int, int], sigma_px: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise (periodic), rescaled to zero mean and unit std.

    Drawn in the frequency domain (white complex Gaussian spectrum × Gaussian transfer), one
    inverse FFT instead of a forward and an inverse one.
    """
    fz = np.fft.fftfreq(shape[0]).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(shape[1]).astype(np.float32)[None, :]
    transfer = np.exp(np.float32(-2 * np.pi**2) * ((sigma_px[0] * fz) ** 2 + (sigma_px[1] * fx) ** 2))
    spec = rng.standard_normal((2,) + transfer.shape, dtype=np.float32)
    out = sfft.irfft2((spec[0] + 1j * spec[1]) * transfer, s=shape, workers=1).astype(np.float32)
    out -= out.mean()
    return out / max(float(out.std()), 1e-6)


def band_limited_noise(shape: tuple[int, int], sigma_px: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """As :func:`smooth_noise` (a Gaussian-filtered white noise, zero mean, unit std) but drawing the
    spectrum only where the Gaussian transfer exceeds 1e-4: a field smoothed over tens of pixels
    needs a few of the 256 frequencies, so this is several times cheaper (its draws differ)."""
    fz = np.fft.fftfreq(shape[0]).astype(np.float32)
    fx = np.fft.rfftfreq(shape[1]).astype(np.float32)
    tz = np.exp(np.float32(-2 * np.pi**2) * (sigma_px[0] * fz) ** 2)
    tx = np.exp(np.float32(-2 * np.pi**2) * (sigma_px[1] * fx) ** 2)
    rows, cols = np.nonzero(tz > 1e-4)[0], np.nonzero(tx > 1e-4)[0]
    sub = tz[rows, None] * tx[None, cols]
    draw = rng.standard_normal((2,) + sub.shape, dtype=np.float32)
    spec = np.zeros((shape[0], len(fx)), np.complex64)
    spec[np.ix_(rows, cols)] = (draw[0] + 1j * draw[1]) * sub
    out = sfft.irfft2(spec, s=shape, workers=1).astype(np.float32)
    out -= out.mean()
    return out / max(float(out.std()), 1e-6)


def smooth_curve(x: np.ndarray, rng: np.random.Generator, amplitude: float, n: int = 3) -> np.ndarray:
    """A random smooth undulation along x (mm): a sum of n sinusoids of random wavelength 8-40 mm."""
    out = np.zeros_like(x, dtype=np.float32)
    for _ in range(n):
        wavelength = rng.uniform(15.0, 60.0)
        out += np.float32(rng.uniform(0.3, 1.0) * amplitude / n * 2) * np.sin(2 * np.pi * x / wavelength + rng.uniform(0, 2 * np.pi)).astype(np.float32)
    return out


def rough_curve(x: np.ndarray, rng: np.random.Generator, amplitude: float, corr_mm: float) -> np.ndarray:
    """An irregular boundary along x (mm): white noise smoothed over ``corr_mm``, std ``amplitude`` mm."""
    dx = float(x[1] - x[0]) if len(x) > 1 else 1.0
    pad = int(4 * corr_mm / dx) + 1
    noise = ndimage.gaussian_filter1d(rng.standard_normal(len(x) + 2 * pad), corr_mm / dx)[pad:-pad]
    return (amplitude * noise / max(float(noise.std()), 1e-6)).astype(np.float32)


def _draw_curves(shape, dz, dx, curves: list[np.ndarray], width_mm: float) -> np.ndarray:
    """Rasterise poly-lines (arrays of (z, x) mm) into a [0, 1] line-intensity map of ~width_mm."""
    h, w = shape
    acc = np.zeros(shape, np.float32)
    for pts in curves:
        r = np.clip(np.rint(pts[:, 0] / dz - 0.5).astype(int), 0, h - 1)
        c = np.clip(np.rint((pts[:, 1] + w * dx / 2) / dx - 0.5).astype(int), 0, w - 1)
        acc[r, c] = 1.0
    sigma = (max(width_mm / dz / 2.355, 0.5), max(width_mm / dx / 2.355, 0.5))
    line = ndimage.gaussian_filter(acc, sigma, mode="constant")
    peak = 1.0 / (2 * np.pi * sigma[0] * sigma[1]) ** 0.5 / 2.0  # a straight line of unit samples blurred
    return np.clip(line / peak, 0.0, 1.0)


def _bezier(p0, p1, p2, n: int) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t**2 * np.asarray(p2)


def breast_anatomy(shape: tuple[int, int], params: SimParams, rng: np.random.Generator) -> Anatomy:
    """Random breast anatomy maps for one image (the layers of ``params.look``)."""
    if params.anatomy == "flat":
        e, a = TISSUE["flat"]
        return Anatomy(np.full(shape, e, np.float32), np.full(shape, a, np.float32),
                       np.zeros(shape[1], np.float32), np.full(shape[1], params.depth_mm, np.float32))
    if params.look == "v0.1":
        return _anatomy_v01(shape, params, rng)
    return _anatomy_busi(shape, params, rng)


def _anatomy_v01(shape: tuple[int, int], params: SimParams, rng: np.random.Generator) -> Anatomy:
    """Simulator version 1: thin arc-shaped ligaments, regular layers, a flat striated pectoral band."""
    h, w = shape
    z1, x1, dz, dx = pixel_grid(shape, params)
    z, x = z1[:, None], x1[None, :]
    depth = params.depth_mm
    scale = depth / 30.0  # layer thicknesses scale with the imaged depth
    tilt = rng.uniform(-0.06, 0.06)

    skin_top = 0.1 + np.float32(rng.uniform(0.0, 0.2)) + smooth_curve(x1, rng, 0.05)
    epi = rng.uniform(0.25, 0.4)
    skin_bottom = skin_top + rng.uniform(1.3, 2.1) + smooth_curve(x1, rng, 0.12)
    # Parenchyma top: undulating, with tent-like peaks where Cooper's ligaments attach.
    n_lig = rng.integers(2, 6)
    lig_x = np.sort(rng.uniform(-0.45, 0.45, n_lig)) * params.width_mm
    fat_bottom = skin_bottom + rng.uniform(3.0, 8.0) * scale + smooth_curve(x1, rng, 0.8 * scale) + tilt * x1
    peaks = np.zeros_like(x1)
    lig_heights = rng.uniform(0.25, 0.7, n_lig)
    for lx, lh in zip(lig_x, lig_heights):
        peaks = np.maximum(peaks, lh * np.exp(-np.abs(x1 - lx) / rng.uniform(1.5, 3.0)))
    fat_thickness = np.maximum(fat_bottom - skin_bottom, 1.0)
    fat_bottom = fat_bottom - peaks * fat_thickness * 0.6
    par_bottom = fat_bottom + peaks * fat_thickness * 0.6 + rng.uniform(9.0, 17.0) * scale + smooth_curve(x1, rng, 0.6 * scale) + tilt * x1
    retro_bottom = par_bottom + rng.uniform(1.0, 3.5) * scale + smooth_curve(x1, rng, 0.3 * scale)

    echo = np.empty(shape, np.float32)
    atten = np.empty(shape, np.float32)

    def put(region: np.ndarray, tissue: str) -> None:
        e, a = TISSUE[tissue]
        echo[region] = e
        atten[region] = a

    # Muscle with striations (oblique fibres) below a bright fascia.
    put(np.ones(shape, bool), "muscle")
    angle = rng.uniform(-0.25, 0.25)
    period = rng.uniform(1.0, 1.8)
    warp = smooth_noise(shape, (6.0, 20.0), rng) * 0.15
    phase = (z * np.cos(angle) + x * np.sin(angle)) / period + warp
    stripes = np.cos(2 * np.pi * phase)
    echo += np.where(stripes > 0.75, 8.0, 0.0).astype(np.float32) * (stripes - 0.75) / 0.25
    fascia = np.abs(z - retro_bottom[None, :]) < 0.25
    put(fascia, "fascia")

    put(z < retro_bottom[None, :] - 0.25, "retromammary")

    # Parenchyma: layered texture parallel to the skin, with fat islands.
    parenchyma = z < par_bottom[None, :]
    e, a = TISSUE["parenchyma"]
    texture = smooth_noise(shape, (0.35 / dz, 1.4 / dx), rng)
    islands = smooth_noise(shape, (0.9 / dz, 2.0 / dx), rng)
    island_weight = np.clip((islands - 1.0) / 0.4, 0.0, 1.0)
    fe, fa = TISSUE["fat_island"]
    echo[parenchyma] = (e + 3.0 * texture + island_weight * (fe - e))[parenchyma]
    atten[parenchyma] = (a + island_weight * (fa - a))[parenchyma]

    # Subcutaneous fat: lobules (anisotropic Voronoi cells) with thin echogenic septa.
    fat = z < fat_bottom[None, :]
    rows = np.nonzero(fat.any(axis=1))[0]
    if len(rows):
        r0, r1 = rows[0], rows[-1] + 1
        zz, xx = z[r0:r1], x
        area = params.width_mm * float(np.mean(fat_thickness))
        n_lob = int(np.clip(area / rng.uniform(12.0, 25.0), 4, 60))
        seeds_z = rng.uniform(float(skin_bottom.min()), float(fat_bottom.max()), n_lob).astype(np.float32)
        seeds_x = rng.uniform(-params.width_mm / 2 - 3, params.width_mm / 2 + 3, n_lob).astype(np.float32)
        d = (1.8 * (zz[None] - seeds_z[:, None, None])) ** 2 + (xx[None] - seeds_x[:, None, None]) ** 2
        part = np.partition(d, 1, axis=0) if n_lob > 1 else np.stack([d[0], d[0] + 1e6])
        gap = np.sqrt(part[1]) - np.sqrt(part[0])
        nearest = np.argmin(d, axis=0)
        lobule_level = rng.uniform(-2.0, 2.0, n_lob).astype(np.float32)[nearest]
        fat_echo = TISSUE["fat"][0] + lobule_level
        se = TISSUE["septum"][0]
        septum = np.clip(1.0 - gap / 0.35, 0.0, 1.0)
        block = fat_echo + septum * (se - fat_echo)
        sub = fat[r0:r1]
        echo[r0:r1][sub] = block[sub]
        atten[r0:r1][sub] = TISSUE["fat"][1]

    # Skin: dermis, with the bright epidermis line at its top; coupling gel above.
    put(z < skin_bottom[None, :], "dermis")
    put(np.abs(z - (skin_top[None, :] + epi / 2)) < epi / 2, "epidermis")
    above = z < skin_top[None, :]
    echo[above] = -40.0
    atten[above] = 0.0

    # Cooper's ligaments: curved echogenic lines from the parenchymal peaks up to the dermis.
    curves = []
    for lx in lig_x:
        col = int(np.clip(np.rint((lx + params.width_mm / 2) / dx - 0.5), 0, w - 1))
        start = (float(fat_bottom[col]), float(lx))
        end_x = lx + rng.uniform(-8.0, 8.0)
        ecol = int(np.clip(np.rint((end_x + params.width_mm / 2) / dx - 0.5), 0, w - 1))
        end = (float(skin_bottom[ecol]), float(end_x))
        ctrl = ((start[0] + end[0]) / 2 + rng.uniform(-1.0, 1.0), (start[1] + end[1]) / 2 + rng.uniform(-4.0, 4.0))
        curves.append(_bezier(start, ctrl, end, 4 * max(h, w)))
        # A ligament often continues a little into the parenchyma as an echogenic strand.
        deep = (start[0] + rng.uniform(1.0, 3.0), start[1] + rng.uniform(-2, 2))
        curves.append(_bezier(start, ((start[0] + deep[0]) / 2, start[1]), deep, 2 * max(h, w)))
    if curves:
        line = _draw_curves(shape, dz, dx, curves, width_mm=0.22)
        le = TISSUE["ligament"][0]
        echo = np.where(line > 0.05, echo + line * (le - echo) * (z > skin_bottom[None, :]), echo).astype(np.float32)

    return Anatomy(echo, atten, fat_bottom.astype(np.float32), par_bottom.astype(np.float32))


# The BUSI-calibrated look (docs/phantom.md): levels in dB relative to parenchyma. Fat is only
# mildly hypoechoic and broken by bright septa, the gland is streaky with bright irregular
# fat/gland interfaces, ligaments are broad flat echogenic bands, the pectoral fascia undulates.
TISSUE_BUSI = {
    "epidermis": (9.0, 1.0),
    "dermis": (5.0, 1.0),
    "fat": (-7.0, 0.6),
    "septum": (3.0, 0.6),
    "ligament": (6.0, 0.8),
    "parenchyma": (0.0, 0.9),
    "fat_island": (-7.0, 0.6),
    "interface": (9.0, 0.9),
    "retromammary": (-8.0, 0.6),
    "fascia": (3.0, 1.0),
    "muscle": (-5.0, 1.0),
}


def _fat_lobules(zz, xx, top, bottom, width_mm, rng, anisotropy: float, level_db: float, spread_db: float,
                 septum_db: float, septum_mm: float) -> np.ndarray:
    """Echogenicity of a fat layer made of Voronoi lobules (stretched laterally) with echogenic septa."""
    area = width_mm * max(float(np.mean(bottom - top)), 1.0)
    n_lob = int(np.clip(area / rng.uniform(10.0, 20.0), 4, 60))
    seeds_z = rng.uniform(float(top.min()), float(bottom.max()), n_lob).astype(np.float32)
    seeds_x = rng.uniform(-width_mm / 2 - 3, width_mm / 2 + 3, n_lob).astype(np.float32)
    d = (anisotropy * (zz[None] - seeds_z[:, None, None])) ** 2 + (xx[None] - seeds_x[:, None, None]) ** 2
    part = np.partition(d, 1, axis=0)
    gap = np.sqrt(part[1]) - np.sqrt(part[0])
    lobule = (level_db + rng.uniform(-spread_db, spread_db, n_lob).astype(np.float32))[np.argmin(d, axis=0)]
    septum = np.clip(1.0 - gap / septum_mm, 0.0, 1.0)
    return lobule + septum * (septum_db - lobule)


def _anatomy_busi(shape: tuple[int, int], params: SimParams, rng: np.random.Generator) -> Anatomy:
    """The layers calibrated to BUSI: bright skin line, mildly dark lobulated fat with bright septa and
    flat ligaments, a streaky gland with bright interfaces, an undulating fascia over dim muscle."""
    T = TISSUE_BUSI
    h, w = shape
    z1, x1, dz, dx = pixel_grid(shape, params)
    z, x = z1[:, None], x1[None, :]
    scale = params.depth_mm / 30.0
    tilt = rng.uniform(-0.12, 0.12)
    skin_top = np.float32(rng.uniform(0.0, 0.1)) + smooth_curve(x1, rng, 0.05)
    epi = rng.uniform(0.25, 0.45)
    skin_bottom = skin_top + rng.uniform(1.0, 2.0) + smooth_curve(x1, rng, 0.15)
    fat_bottom = skin_bottom + rng.uniform(1.5, 9.0) * scale + rough_curve(x1, rng, 0.9 * scale, 3.0) + tilt * x1
    fat_bottom = np.maximum(fat_bottom, skin_bottom + 0.5)
    par_bottom = fat_bottom + rng.uniform(7.0, 16.0) * scale + rough_curve(x1, rng, 1.2 * scale, 6.0) + tilt * x1
    retro_bottom = par_bottom + rng.uniform(1.0, 4.0) * scale + rough_curve(x1, rng, 0.5 * scale, 6.0)

    echo = np.empty(shape, np.float32)
    atten = np.empty(shape, np.float32)

    # Muscle: dim, with faint fibre streaks nearly parallel to the skin; fascia of varying thickness.
    e, a = T["muscle"]
    echo[:] = e + 2.5 * band_limited_noise(shape, (0.25 / dz, 4.0 / dx), rng)
    atten[:] = a
    fascia_half = 0.15 + 0.1 * np.abs(rough_curve(x1, rng, 1.0, 3.0))
    fascia = np.abs(z - retro_bottom[None, :]) < np.maximum(fascia_half, 0.1)[None, :]
    echo[fascia], atten[fascia] = T["fascia"]
    retro = z < (retro_bottom - fascia_half)[None, :]
    echo[retro], atten[retro] = T["retromammary"]

    # Gland: streaky texture parallel to the skin, fat islands, bright broken interfaces.
    gland = z < par_bottom[None, :]
    e, a = T["parenchyma"]
    texture = band_limited_noise(shape, (0.15 / dz, 3.0 / dx), rng)
    islands = band_limited_noise(shape, (0.8 / dz, 3.5 / dx), rng)
    island_weight = np.clip((islands - 0.8) / 0.4, 0.0, 1.0)
    contour = band_limited_noise(shape, (0.6 / dz, 4.0 / dx), rng)
    broken = np.clip(band_limited_noise(shape, (1.0 / dz, 3.0 / dx), rng) + 0.3, 0.0, 1.0)
    interface = np.exp(-((contour / 0.2) ** 2)) * broken
    fe, fa = T["fat_island"]
    gland_echo = e + 4.5 * texture + island_weight * (fe - e)
    gland_echo += interface * (T["interface"][0] - gland_echo)
    echo[gland] = gland_echo[gland]
    atten[gland] = (a + island_weight * (fa - a))[gland]

    # Subcutaneous fat: flattened lobules with bright septa.
    fat = z < fat_bottom[None, :]
    rows = np.nonzero(fat.any(axis=1))[0]
    if len(rows):
        r0, r1 = rows[0], rows[-1] + 1
        block = _fat_lobules(z[r0:r1], x, skin_bottom, fat_bottom, params.width_mm, rng, anisotropy=2.5,
                             level_db=T["fat"][0], spread_db=2.5, septum_db=T["septum"][0], septum_mm=0.3)
        sub = fat[r0:r1]
        echo[r0:r1][sub] = block[sub]
        atten[r0:r1][sub] = T["fat"][1]

    echo[z < skin_bottom[None, :]], atten[z < skin_bottom[None, :]] = T["dermis"]
    epidermis = np.abs(z - (skin_top[None, :] + epi / 2)) < epi / 2
    echo[epidermis], atten[epidermis] = T["epidermis"]
    above = z < skin_top[None, :]
    echo[above], atten[above] = -40.0, 0.0

    # Cooper's ligaments: broad, flat echogenic bands from the gland up through the fat.
    curves = []
    for _ in range(int(rng.integers(1, 4))):
        sx = rng.uniform(-0.45, 0.45) * params.width_mm
        col = int(np.clip(np.rint((sx + params.width_mm / 2) / dx - 0.5), 0, w - 1))
        ex = sx + rng.choice([-1, 1]) * rng.uniform(6.0, 16.0)
        ecol = int(np.clip(np.rint((ex + params.width_mm / 2) / dx - 0.5), 0, w - 1))
        start, end = (float(fat_bottom[col]), float(sx)), (float(skin_bottom[ecol]), float(ex))
        ctrl = (end[0] + rng.uniform(0.0, 1.0) * (start[0] - end[0]), (start[1] + end[1]) / 2)
        curves.append(_bezier(start, ctrl, end, 4 * max(h, w)))
    if curves:
        line = _draw_curves(shape, dz, dx, curves, width_mm=0.35)
        le = T["ligament"][0]
        inside = (z > skin_bottom[None, :]) & (z < fat_bottom[None, :] + 0.5)
        echo = np.where((line > 0.05) & inside, echo + line * (le - echo), echo).astype(np.float32)
    return Anatomy(echo, atten, fat_bottom.astype(np.float32), par_bottom.astype(np.float32))
