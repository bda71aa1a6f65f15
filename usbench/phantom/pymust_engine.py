"""The high-fidelity engine: PyMUST (SIMUS + delay-and-sum) on the same anatomy.

Point scatterers are drawn uniformly over the field of view (``scatterers_per_cell`` per resolution
cell), their reflection coefficients are Gaussian amplitudes scaled by
sqrt(echogenicity) and by the same round-trip attenuation and TGC as the fast engine, looked up at
each scatterer's pixel. SIMUS simulates the RF of one plane-wave transmit of a linear array with
the probe's centre frequency and bandwidth; the I/Q signals are beamformed by delay-and-sum
(``dasmtx``) at the pixel centres (on the same refined grid as the fast engine), then envelope,
log compression and display averaging follow the fast engine.

Slow: SIMUS computes every scatterer's echo on every element. Minutes per 256×256 image;
seconds for a few mm². PyMUST is an optional dependency (``pip install pymust``).
"""

from __future__ import annotations

import math

import numpy as np

from usbench.errors import ConfigError
from usbench.phantom.imaging import attenuation_gain_db, display_oversampling, log_compress, pixel_grid
from usbench.phantom.params import SPEED_OF_SOUND_M_S, SimParams


def pymust_available() -> bool:
    try:
        import pymust  # noqa: F401
    except ImportError:
        return False
    return True


def _import_pymust():
    try:
        import pymust
    except ImportError:
        raise ConfigError("engine 'pymust' needs PyMUST, which is not installed",
                          "pip install pymust (or usbench[pymust]), or use engine 'fft'") from None
    return pymust


def scatterer_count(params: SimParams) -> int:
    cell_mm2 = params.axial_fwhm_mm * params.beam_width_mm
    return int(math.ceil(params.scatterers_per_cell * params.depth_mm * params.width_mm / cell_mm2))


def render_pymust(echo_db: np.ndarray, atten: np.ndarray | None, params: SimParams, rng: np.random.Generator) -> np.ndarray:
    """8-bit B-mode image of the maps simulated by PyMUST (SIMUS, plane wave, DAS)."""
    pymust = _import_pymust()
    h, w = echo_db.shape
    _, _, dz, dx = pixel_grid((h, w), params)
    n = scatterer_count(params)
    zs = rng.uniform(0.0, params.depth_mm, n)
    xs = rng.uniform(-params.width_mm / 2, params.width_mm / 2, n)
    row = np.clip((zs / dz).astype(int), 0, h - 1)
    col = np.clip(((xs + params.width_mm / 2) / dx).astype(int), 0, w - 1)
    amplitude = np.power(10.0, echo_db / 20.0)
    gain = attenuation_gain_db(atten, params, dz)
    if gain is not None:
        amplitude = amplitude * np.power(10.0, gain / 20.0)
    rc = rng.standard_normal(n) * amplitude[row, col]

    param = pymust.getparam("L11-5v")
    param.fc = params.center_frequency_mhz * 1e6
    param.bandwidth = params.fractional_bandwidth * 100.0  # MUST wants percent
    param.c = SPEED_OF_SOUND_M_S
    param.fnumber = 1.7  # receive aperture grows with depth: lower off-axis clutter than the full aperture
    # Active aperture: the elements under the field of view plus the receive aperture (F# 1.7) at
    # full depth on each side; all 128 for the default 38.4 mm field of view.
    pitch_mm = float(param.pitch) * 1e3
    param.Nelements = int(min(param.Nelements, max(16, math.ceil((params.width_mm + params.depth_mm / 1.7) / pitch_mm))))
    keep = zs > 0.05  # SIMUS is undefined on the transducer surface
    tx = pymust.txdelay(param, 0)  # one plane wave, no tilt
    rf, _ = pymust.simus(xs[keep] * 1e-3, zs[keep] * 1e-3, rc[keep], tx, param)
    iq = pymust.rf2iq(rf, param)

    fz, fx = display_oversampling((h, w), params)
    zf = (np.arange(h * fz) + 0.5) * dz / fz
    xf = (np.arange(w * fx) + 0.5) * dx / fx - params.width_mm / 2
    X, Z = np.meshgrid(xf * 1e-3, zf * 1e-3)
    das = pymust.dasmtx(iq, X, Z, tx, param)
    envelope = np.abs((das @ iq.flatten(order="F")).reshape(X.shape, order="F"))
    # Calibrate the absolute level: expected intensity is echogenicity × attenuation, as in the fast engine.
    expected = np.power(10.0, echo_db / 10.0) * (1.0 if gain is None else np.power(10.0, gain / 10.0))
    envelope *= math.sqrt(float(expected.mean()) / max(float(np.mean(envelope**2)), 1e-30))
    if (fz, fx) == (1, 1):
        return log_compress(envelope, params)
    db = (20.0 * np.log10(np.maximum(envelope, 1e-12))).reshape(h, fz, w, fx).mean(axis=(1, 3))
    scaled = (db + params.gain_db + params.dynamic_range_db) * (255.0 / params.dynamic_range_db)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
