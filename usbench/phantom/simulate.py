"""One simulated breast ultrasound image: anatomy → lesion → scatterers → PSF → envelope → 8 bits."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from usbench.errors import ConfigError, InputError
from usbench.phantom.anatomy import breast_anatomy
from usbench.phantom.imaging import render_bmode
from usbench.phantom.lesions import LABELS, LESION_LABELS, LesionSpec, apply_lesion, lesion_mask, random_lesion, spec_for_mask
from usbench.phantom.params import SimParams, check_size


@dataclass
class Phantom:
    """The maps one image is rendered from (for tests, the PyMUST engine and inspection)."""

    label: str
    echo_db: np.ndarray
    atten: np.ndarray
    mask: np.ndarray  # bool; all False for normal
    lesion: LesionSpec | None


def check_mask(label: str, mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    """A conditioning mask as bool of the image shape, or a one-line InputError."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.shape != tuple(shape):
        raise InputError(f"conditioning mask has shape {mask.shape} but the image is {shape[0]}x{shape[1]}",
                         "resize the mask (nearest neighbour) to the requested size")
    mask = mask.astype(bool)
    if label in LESION_LABELS and not mask.any():
        raise InputError(f"the conditioning mask of a {label} image is empty",
                         "give a mask with the lesion, or no mask to draw a random one")
    if label == "normal" and mask.any():
        raise InputError("a normal image was given a non-empty lesion mask", "label it benign or malignant, or drop the mask")
    return mask


def check_seed(seed: int) -> int:
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"the phantom seed must be an integer >= 0, got {seed!r}", "use a non-negative integer seed")
    return int(seed)


def check_label(label: str) -> str:
    if label not in LABELS:
        raise InputError(f"the phantom has no class {label!r}", f"use one of {', '.join(LABELS)}")
    return label


def build_phantom(label: str, seed: int, shape: tuple[int, int], params: SimParams,
                  mask: np.ndarray | None = None) -> Phantom:
    """Anatomy and lesion maps for (label, seed); ``mask`` fixes the lesion shape exactly."""
    check_label(label)
    check_seed(seed)
    mask = check_mask(label, mask, shape)
    anatomy_seq, lesion_seq, texture_seq = np.random.SeedSequence(int(seed)).spawn(3)
    anatomy = breast_anatomy(shape, params, np.random.default_rng(anatomy_seq))
    echo, atten = anatomy.echo_db, anatomy.atten
    lesion_rng = np.random.default_rng(lesion_seq)
    spec = None
    if label == "normal":
        mask = np.zeros(shape, bool)
    else:
        if mask is None:
            spec = random_lesion(label, lesion_rng, params, (anatomy.parenchyma_top, anatomy.parenchyma_bottom))
            mask = lesion_mask(spec, shape, params)
        else:
            spec = spec_for_mask(label, mask, lesion_rng, params)
        apply_lesion(echo, atten, mask, spec, params, np.random.default_rng(texture_seq))
    return Phantom(label, echo, atten, mask, spec)


ENGINES = ("fft", "pymust")


def simulate(label: str, seed: int, size: int = 256, mask: np.ndarray | None = None,
             params: SimParams | None = None, engine: str = "fft") -> tuple[np.ndarray, np.ndarray]:
    """Simulate one B-mode image of class ``label``: returns (uint8 image, bool lesion mask), both size×size.

    Same (label, seed, size, mask, params, engine), same image. With ``mask`` the lesion has exactly
    that shape (the class still picks its echotexture and posterior effects) and the returned mask
    equals it. ``engine`` is "fft" (the fast convolution model) or "pymust" (SIMUS + DAS: slow,
    optional dependency).
    """
    params = (params or SimParams()).validate()
    check_size(size)
    check_engine(engine)
    phantom = build_phantom(label, seed, (size, size), params, mask)
    image = render_image(phantom, params, seed, engine)
    return image, phantom.mask


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ConfigError(f"unknown phantom engine {engine!r}", f"use one of {', '.join(ENGINES)}")
    return engine


def scanner_settings(params: SimParams, seed: int) -> SimParams:
    """The gain and TGC of image ``seed``: the operator's setting varies from image to image."""
    if params.gain_sd_db <= 0 and params.tgc_sd_db_per_cm_mhz <= 0:
        return params
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2]))
    gain, tgc = rng.standard_normal(2)
    return params.with_(gain_db=params.gain_db + params.gain_sd_db * float(gain),
                        tgc_db_per_cm_mhz=max(0.0, params.tgc_db_per_cm_mhz + params.tgc_sd_db_per_cm_mhz * float(tgc)))


def render_image(phantom: Phantom, params: SimParams, seed: int, engine: str = "fft") -> np.ndarray:
    """Speckle formation and display for a built phantom (with the image's own gain and TGC)."""
    params = scanner_settings(params, seed)
    speckle_seq = np.random.SeedSequence([int(seed), 1]).spawn(1)[0]
    rng = np.random.default_rng(speckle_seq)
    if check_engine(engine) == "pymust":
        from usbench.phantom.pymust_engine import render_pymust

        return render_pymust(phantom.echo_db, phantom.atten, params, rng)
    return render_bmode(phantom.echo_db, params, rng, phantom.atten)
