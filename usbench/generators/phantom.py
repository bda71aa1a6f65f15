"""The ``phantom`` generator: the built-in physics simulator as a generator backend, and its
deliberately mis-specified variants.

- ``phantom``: the simulator with the default (BUSI-calibrated, preset ``busi``) parameters; class-conditioned, or
  mask-conditioned when a request carries a mask (the lesion then has exactly that shape).
- ``phantom-blurred``: a wide beam and a narrow-band (long) pulse: coarse, blobby speckle that
  hides texture and margins (as a generator that learned a low-resolution look).
- ``phantom-sparse``: too few scatterers per resolution cell: speckle that is not fully
  developed (bright dots on dark), far from the Rayleigh statistics of real tissue.
- ``phantom-flat``: no anatomy (homogeneous background) and no attenuation: lesions float in
  uniform speckle, with no posterior enhancement or shadowing.

Config keys (all optional; TOML table or dict): preset (busi, v0.1 or a probe), center_frequency_mhz,
fractional_bandwidth, beam_width_mm, focal_depth_mm, depth_mm, width_mm, dynamic_range_db,
gain_db, gain_sd_db, tgc_db_per_cm_mhz, tgc_sd_db_per_cm_mhz, speckle_reduction_mm, attenuation,
scatterers_per_cell, anatomy, look, noise_floor_db (receiver noise, dB above black; preset v0.1
has none), engine ("fft" or "pymust").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Iterator, Sequence

import numpy as np

from usbench.errors import ConfigError
from usbench.generators.base import GenerationRequest, config_from_dict, fingerprint_of
from usbench.phantom.params import SIMULATOR_VERSION, SimParams, check_size, preset_params
from usbench.phantom.simulate import check_engine, check_label, simulate


@dataclass
class PhantomConfig:
    """Generator config. ``None`` means: take the value from the probe preset."""

    preset: str = "busi"
    center_frequency_mhz: float | None = None
    fractional_bandwidth: float | None = None
    beam_width_mm: float | None = None
    focal_depth_mm: float | None = None
    depth_mm: float | None = None
    width_mm: float | None = None
    dynamic_range_db: float | None = None
    gain_db: float | None = None
    gain_sd_db: float | None = None
    tgc_db_per_cm_mhz: float | None = None
    tgc_sd_db_per_cm_mhz: float | None = None
    speckle_reduction_mm: float | None = None
    attenuation: bool | None = None
    scatterers_per_cell: float | None = None
    anatomy: str | None = None
    look: str | None = None
    noise_floor_db: float | None = None
    engine: str = "fft"

    def params(self, where: str) -> SimParams:
        overrides: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if key in ("preset", "engine") or value is None:
                continue
            if key in ("anatomy", "look"):
                ok = isinstance(value, str)
            elif key == "attenuation":
                ok = isinstance(value, bool)
            else:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                value = float(value) if ok else value
            if not ok:
                raise ConfigError(f"{where}: {key} has the wrong type {type(value).__name__} ({value!r})",
                                  "numbers for physical parameters, true/false for attenuation, a string for anatomy and look")
            overrides[key] = value
        if not isinstance(self.preset, str):
            raise ConfigError(f"{where}: preset must be a string, got {self.preset!r}", "e.g. preset = \"l11-5v\"")
        return preset_params(self.preset, **overrides)


class PhantomGenerator:
    """The built-in physics-based baseline (see :mod:`usbench.phantom`)."""

    name: ClassVar[str] = "phantom"
    needs_weights: ClassVar[bool] = False
    mask_conditioned: ClassVar[bool] = True
    # What a variant changes relative to the faithful simulator (user config still wins).
    variant_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: PhantomConfig | None = None):
        self.config = config or PhantomConfig()
        self.params = self.config.params(f"generator {self.name}")
        self.engine = check_engine(self.config.engine)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "PhantomGenerator":
        merged = {**cls.variant_defaults, **dict(config or {})}
        return cls(config_from_dict(PhantomConfig, merged, f"generator {cls.name}"))

    def fingerprint(self) -> str:
        return fingerprint_of(self.name, SIMULATOR_VERSION, self.engine, self.params)

    def check_requests(self, requests: Sequence[GenerationRequest]) -> None:
        """Labels and sizes the simulator serves, checked before the first image is made."""
        for req in requests:
            check_label(req.label)
            check_size(req.size)

    # Requests per generate() call: each call is spread over the usable cores (see generate).
    min_batch_size: ClassVar[int] = 256

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[np.ndarray]:
        """One image per request, in order; across processes when there are enough requests
        (each image depends only on its own seed, so the pixels do not depend on the workers)."""
        from usbench.datasets.phantom import map_simulations

        for req in requests:
            check_label(req.label)
            check_size(req.size)
        jobs = [(req.label, req.seed, req.size, req.mask, self.params, self.engine) for req in requests]
        yield from map_simulations(_simulate_request, jobs, None if self.engine == "fft" else 1, chunksize=4)


def _simulate_request(job: tuple) -> np.ndarray:
    label, seed, size, mask, params, engine = job
    return simulate(label, seed, size, mask=mask, params=params, engine=engine)[0]


class BlurredPhantomGenerator(PhantomGenerator):
    """Mis-specified: a 1.5× wider beam and a 1.5× longer pulse than the default (coarse speckle, lost detail).

    Until usbench 0.2 the beam was 4× and the pulse 3.6×: then the wavelet detail bands of every
    image fell into one or two of FRD v1's grey levels, GLSZM saw one zone per image and FRD's d²
    against the phantom reference reached 7e9 (zone-size arithmetic, not texture). At 1.5× the
    variant is still the blurred one in every statistic and stays in the metrics' working range
    (docs/phantom.md, "Variants")."""

    name = "phantom-blurred"
    variant_defaults = {"beam_width_mm": 1.43, "fractional_bandwidth": 0.6}


class SparsePhantomGenerator(PhantomGenerator):
    """Mis-specified: 0.3 scatterers per resolution cell (speckle not fully developed)."""

    name = "phantom-sparse"
    variant_defaults = {"scatterers_per_cell": 0.3}


class FlatPhantomGenerator(PhantomGenerator):
    """Mis-specified: homogeneous background, no attenuation (no anatomy, no posterior effects)."""

    name = "phantom-flat"
    variant_defaults = {"anatomy": "flat", "attenuation": False}


__all__ = ["BlurredPhantomGenerator", "FlatPhantomGenerator", "PhantomConfig", "PhantomGenerator", "SparsePhantomGenerator"]
