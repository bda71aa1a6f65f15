"""Simulation parameters: presets and the checked parameter set of one simulation.

The defaults (preset ``busi``) are calibrated to real breast ultrasound (BUSI at 256 px, measured by
``bench/phantom_realism.py``, see docs/phantom.md): a 7.6 MHz linear array whose *effective*
resolution at the output is what BUSI shows after the scanner's compounding/speckle reduction and
the downsizing to 256 px (coarser than the probe's own PSF), a TGC that leaves the far field dark, a
60 dB display. Preset ``v0.1`` is the simulator as it was before that calibration (a Verasonics
L11-5v-like PSF, 77 % bandwidth, 0.4 mm beam, a TGC that cancels the attenuation): kept to show the
before. The probe presets (``l11-5v``…) set only a probe's PSF on top of the defaults.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields, replace
from typing import Any

from usbench.errors import ConfigError, UnknownNameError

# Bump when a change alters the pixels: it is part of every cache key (reference set, generator).
SIMULATOR_VERSION = "3"  # 3: receiver noise floor (no zero-clipped flat zones)
SPEED_OF_SOUND_M_S = 1540.0
MIN_SIZE, MAX_SIZE = 32, 1024


@dataclass(frozen=True)
class SimParams:
    """Everything that changes the pixels of one simulated B-mode image.

    Lengths in mm, frequencies in MHz, attenuation in dB/(cm·MHz), levels in dB.
    """

    center_frequency_mhz: float = 7.6
    fractional_bandwidth: float = 0.9  # -6 dB width of the pulse-echo spectrum / centre frequency
    beam_width_mm: float = 0.95  # pulse-echo lateral -6 dB width at the focus
    focal_depth_mm: float = 15.0
    depth_of_field_mm: float = 12.0  # distance from the focus at which the beam is √2 wider
    depth_mm: float = 30.0  # imaged depth (rows span 0..depth)
    width_mm: float = 38.4  # lateral field of view (128 elements × 0.3 mm)
    dynamic_range_db: float = 55.0
    gain_db: float = -23.0  # parenchyma (0 dB echogenicity, no attenuation) sits at 255·(DR+gain)/DR
    tgc_db_per_cm_mhz: float = 0.42  # what time-gain compensation assumes the tissue attenuates
    attenuation: bool = True  # frequency-dependent attenuation along depth (False: none, no TGC)
    scatterers_per_cell: float = 20.0  # mean scatterer count per resolution cell (≥10: developed speckle)
    anatomy: str = "full"  # "full" breast layers and texture, or "flat" (homogeneous background)
    gain_sd_db: float = 4.0  # per-image spread of the operator's gain (drawn per seed; 0: fixed)
    tgc_sd_db_per_cm_mhz: float = 0.1  # per-image spread of the TGC slope (drawn per seed; 0: fixed)
    speckle_reduction_mm: float = 0.10  # σ of the Gaussian smoothing of the log image (scanner speckle reduction; 0: none)
    look: str = "busi"  # anatomy and lesion tables: "busi" (calibrated to BUSI) or "v0.1" (before)
    # receiver (thermal) noise power in dB above the display's black level (a scanner's gain is set so
    # that noise is barely visible); None: no noise. Without it the darkest regions (shadows, the far
    # field) clip to exactly 0 in large flat zones that real scanners never show (at 64 px BUSI has
    # 0.1 % of pixels at 0, the uncorrected phantom 4.7 %).
    noise_floor_db: float | None = 6.0

    # -- derived quantities -------------------------------------------------------------------
    @property
    def wavelength_mm(self) -> float:
        return SPEED_OF_SOUND_M_S / (self.center_frequency_mhz * 1e6) * 1e3

    @property
    def axial_sigma_mm(self) -> float:
        """σ of the Gaussian pulse-echo envelope along depth.

        Spectrum amplitude ∝ exp(-(f-f0)²/2σf²) with -6 dB full width B·f0 = 2√(2 ln 2)·σf; the
        envelope in time has σt = 1/(2π σf); two-way travel maps time to depth by c/2.
        """
        sigma_f = self.fractional_bandwidth * self.center_frequency_mhz * 1e6 / (2 * math.sqrt(2 * math.log(2)))
        sigma_t = 1.0 / (2 * math.pi * sigma_f)
        return SPEED_OF_SOUND_M_S * sigma_t / 2 * 1e3

    @property
    def axial_fwhm_mm(self) -> float:
        return 2 * math.sqrt(2 * math.log(2)) * self.axial_sigma_mm

    def lateral_fwhm_mm(self, depth_mm: Any) -> Any:
        """Pulse-echo lateral -6 dB width at ``depth_mm`` (Gaussian beam around the focus)."""
        import numpy as np

        return self.beam_width_mm * np.sqrt(1.0 + ((np.asarray(depth_mm) - self.focal_depth_mm) / self.depth_of_field_mm) ** 2)

    def with_(self, **changes: Any) -> "SimParams":
        return replace(self, **changes)

    def validate(self) -> "SimParams":
        """Refuse impossible values with one line each (ConfigError)."""
        checks = [
            (self.center_frequency_mhz > 0, f"center frequency must be > 0 MHz, got {self.center_frequency_mhz}"),
            (self.center_frequency_mhz <= 100, f"center frequency {self.center_frequency_mhz} MHz is above 100 MHz"),
            (0 < self.fractional_bandwidth <= 2.0,
             f"fractional bandwidth must be in (0, 2] (0-200 %), got {self.fractional_bandwidth}"),
            (self.beam_width_mm > 0, f"beam width must be > 0 mm, got {self.beam_width_mm}"),
            (self.depth_of_field_mm > 0, f"depth of field must be > 0 mm, got {self.depth_of_field_mm}"),
            (self.depth_mm > 0 and self.width_mm > 0, f"depth and width must be > 0 mm, got {self.depth_mm}, {self.width_mm}"),
            (self.dynamic_range_db > 0, f"dynamic range must be > 0 dB, got {self.dynamic_range_db}"),
            (self.tgc_db_per_cm_mhz >= 0, f"TGC slope must be >= 0 dB/cm/MHz, got {self.tgc_db_per_cm_mhz}"),
            (self.scatterers_per_cell > 0, f"scatterers per resolution cell must be > 0, got {self.scatterers_per_cell}"),
            (self.anatomy in ("full", "flat"), f"anatomy must be 'full' or 'flat', got {self.anatomy!r}"),
            (self.gain_sd_db >= 0 and self.tgc_sd_db_per_cm_mhz >= 0,
             f"gain and TGC spreads must be >= 0, got {self.gain_sd_db}, {self.tgc_sd_db_per_cm_mhz}"),
            (self.speckle_reduction_mm >= 0, f"speckle reduction must be >= 0 mm, got {self.speckle_reduction_mm}"),
            (self.look in LOOKS, f"look must be one of {', '.join(LOOKS)}, got {self.look!r}"),
            (self.noise_floor_db is None or -60 <= self.noise_floor_db <= 60,
             f"receiver noise floor must be None or in [-60, 60] dB above black, got {self.noise_floor_db}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message, "fix the phantom parameter")
        return self


LOOKS = ("busi", "v0.1")

# Presets: overrides of the defaults. "busi" is the defaults; "v0.1" every parameter of simulator
# version 1 (before the BUSI calibration); the probe presets fix a probe's PSF (field of view,
# display and look stay as given).
PRESETS: dict[str, dict[str, Any]] = {
    "busi": {},
    "v0.1": dict(center_frequency_mhz=7.6, fractional_bandwidth=0.77, beam_width_mm=0.40, dynamic_range_db=50.0,
                 gain_db=-19.0, tgc_db_per_cm_mhz=0.7, gain_sd_db=0.0, tgc_sd_db_per_cm_mhz=0.0, speckle_reduction_mm=0.0, look="v0.1",
                 noise_floor_db=None),
    # Verasonics L11-5v (PyMUST getparam): 7.6 MHz, 77 % bandwidth, 128 × 0.3 mm.
    "l11-5v": dict(center_frequency_mhz=7.6, fractional_bandwidth=0.77, beam_width_mm=0.40, width_mm=38.4),
    # Verasonics L12-3v: 7.5 MHz, 93 % bandwidth, 192 × 0.2 mm.
    "l12-3v": dict(center_frequency_mhz=7.5, fractional_bandwidth=0.93, beam_width_mm=0.41, width_mm=38.4),
    # A high-frequency breast probe (ML6-15 class, BUSI was acquired with a LOGIQ E9 ML6-15).
    "ml6-15": dict(center_frequency_mhz=10.0, fractional_bandwidth=0.80, beam_width_mm=0.31, width_mm=38.4),
    # A low-frequency abdominal-type linear setting: visibly coarser speckle.
    "l7-4": dict(center_frequency_mhz=5.2, fractional_bandwidth=0.60, beam_width_mm=0.60, width_mm=38.4),
}


def preset_params(preset: str, **overrides: Any) -> SimParams:
    """SimParams of a named probe preset, with explicit overrides (None values are ignored)."""
    key = preset.lower()
    if key not in PRESETS:
        raise UnknownNameError(f"unknown probe preset {preset!r}", f"known presets: {', '.join(sorted(PRESETS))}")
    known = {f.name for f in fields(SimParams)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise ConfigError(f"unknown phantom parameter(s) {', '.join(bad)}", f"known: {', '.join(sorted(known))}")
    values = {**PRESETS[key], **{k: v for k, v in overrides.items() if v is not None}}
    return SimParams(**values).validate()


def check_size(size: int) -> int:
    if not isinstance(size, numbers.Integral) or isinstance(size, bool) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ConfigError(f"image size must be an integer in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}",
                          "use e.g. --size 256")
    return int(size)
