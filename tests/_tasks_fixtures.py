"""Toy ultrasound-like data for the task-metric tests: speckle with darker lesions and exact masks.

``render(mask, rng)`` is the one renderer: the training set, and the "generator that honours its
masks exactly", both draw images from a mask with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from usbench.imageset import ImageSet, ImageSetWriter

SHADOW = 0.2  # strength of the posterior shadow under malignant lesions (the cue a classifier can learn)


def lesion_mask(label: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Empty for normal; an ellipse for benign; an irregular spiky blob for malignant."""
    mask = np.zeros((size, size), bool)
    if label == "normal":
        return mask
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    cy, cx = rng.uniform(0.32, 0.68, size=2) * size
    dy, dx = yy - cy, xx - cx
    if label == "benign":
        a, b = rng.uniform(0.13, 0.24, size=2) * size
        t = rng.uniform(0, np.pi)
        u = dx * np.cos(t) + dy * np.sin(t)
        v = -dx * np.sin(t) + dy * np.cos(t)
        return (u / a) ** 2 + (v / b) ** 2 <= 1
    r0 = rng.uniform(0.14, 0.22) * size
    theta = np.arctan2(dy, dx)
    radius = r0 * (1 + sum(rng.uniform(0.08, 0.2) * np.sin(k * theta + rng.uniform(0, 2 * np.pi)) for k in (3, 5, 7)))
    return np.hypot(dy, dx) <= radius


def render(mask: np.ndarray, rng: np.random.Generator, label: str = "benign") -> np.ndarray:
    """Speckle-like tissue (smoothed Rayleigh noise with a depth gradient) with the lesion darker;
    a malignant lesion casts a posterior acoustic shadow (darker tissue below it)."""
    size = mask.shape[0]
    speckle = np.abs(rng.normal(size=mask.shape) + 1j * rng.normal(size=mask.shape))
    speckle = gaussian_filter(speckle, 0.8)
    depth = np.linspace(1.0, 0.75, size)[:, None]
    lesion = gaussian_filter(mask.astype(np.float64), 0.7)
    img = 95 * speckle * depth * (1 - 0.7 * lesion)
    if label == "malignant":
        below = np.maximum.accumulate(mask, axis=0) & ~mask
        img = img * (1 - SHADOW * gaussian_filter(below.astype(np.float64), 1.0))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_toy_set(out: Path, counts: dict[str, int], size: int = 64, seed: int = 0, masks: bool = True,
                 normal_masks: bool = True) -> ImageSet:
    """``normal_masks=False`` leaves normal images without a mask file, as the phantom set does."""
    rng = np.random.default_rng(seed)
    with ImageSetWriter(out, source="toy") as w:
        for label, n in counts.items():
            for i in range(n):
                m = lesion_mask(label, size, rng)
                keep = masks and (normal_masks or label != "normal")
                w.add(f"{label}-{i:03d}", render(m, rng, label), label=label, mask=m if keep else None)
    return ImageSet.read(out)


def honouring_generator(out: Path, masks: list[np.ndarray], labels: list[str], seed: int,
                        condition=lambda m: m, normal_masks: bool = True) -> ImageSet:
    """A generator that renders each image from its mask exactly; the manifest records ``condition(mask)``
    as the conditioning mask (identity: a perfect generator; a shift or dilation: a generator that
    drifts from what it was asked)."""
    rng = np.random.default_rng(seed)
    with ImageSetWriter(out, source="toy-generator") as w:
        for i, (m, label) in enumerate(zip(masks, labels)):
            keep = normal_masks or label != "normal"
            w.add(f"g{i:04d}", render(m, rng, label), label=label, mask=condition(m) if keep else None)
    return ImageSet.read(out)
