"""Synthetic textured images and small image sets for the metrics tests (no phantom, no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from usbench.imageset import ImageRecord, ImageSet, write_png


def textured_image(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A speckle-like texture with a few smooth blobs: random but from one distribution."""
    base = gaussian_filter(rng.normal(0, 1, (size, size)), rng.uniform(1.0, 2.5))
    base = base / (base.std() + 1e-9)
    yy, xx = np.mgrid[:size, :size] / size
    for _ in range(rng.integers(1, 4)):
        cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.08, 0.25)
        base -= 1.5 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
    speckle = rng.rayleigh(1.0, (size, size))
    img = 110 + 28 * base + 18 * (speckle - speckle.mean())
    return np.clip(img, 0, 255).astype(np.uint8)


def degrade(img: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
    x = img.astype(np.float64)
    if kind == "blur":
        x = gaussian_filter(x, level) if level > 0 else x
    elif kind == "noise":
        x = x + rng.normal(0, level, x.shape)
    elif kind == "contrast":
        x = x.mean() + (x - x.mean()) * (1 - level)
    else:
        raise ValueError(kind)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def write_set(folder: Path, images: list[np.ndarray], prefix: str = "img", label: str = "") -> ImageSet:
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i, im in enumerate(images):
        path = folder / f"{prefix}{i:04d}.png"
        write_png(path, im)
        records.append(ImageRecord(id=f"{prefix}{i:04d}", file=path, label=label))
    return ImageSet(records, name=folder.name, root=folder)


def make_images(n: int, seed: int, size: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [textured_image(rng, size) for _ in range(n)]


def tiny_net():
    """A factory for the torch-module extractor test: 4 features per image."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def lesion_image(rng: np.random.Generator, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A textured image with a dark, finely textured elliptical lesion and its mask."""
    img = textured_image(rng, size).astype(np.float64)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(0.35, 0.65) * size, rng.uniform(0.35, 0.65) * size
    ry, rx = rng.uniform(0.12, 0.22) * size, rng.uniform(0.15, 0.25) * size
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
    inner = 50 + 25 * rng.normal(size=(size, size))
    img[mask] = inner[mask]
    return np.clip(img, 0, 255).astype(np.uint8), mask


def write_masked_set(folder: Path, pairs: list[tuple[np.ndarray, np.ndarray]], prefix: str = "img") -> ImageSet:
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i, (im, mask) in enumerate(pairs):
        path, mpath = folder / f"{prefix}{i:04d}.png", folder / f"{prefix}{i:04d}_mask.png"
        write_png(path, im)
        write_png(mpath, mask)
        records.append(ImageRecord(id=f"{prefix}{i:04d}", file=path, mask_file=mpath))
    return ImageSet(records, name=folder.name, root=folder)
