"""Lesions following BI-RADS ultrasound descriptors, randomised within each class.

- benign: oval or round, circumscribed (smooth or gently macrolobulated), parallel to the skin
  (wider than tall); either a cyst (anechoic, almost no attenuation → strong posterior
  enhancement, thin refraction shadows at its lateral edges) or a solid hypoechoic mass
  (fibroadenoma-like, homogeneous, mild posterior enhancement).
- malignant: irregular with angular or spiculated margins, not parallel (taller than wide),
  heterogeneous and markedly hypoechoic, strongly attenuating (posterior shadowing), sometimes
  surrounded by an echogenic halo.

Every lesion is a boolean mask on the pixel grid; the maps change exactly inside the mask (and, for
the halo and the edge shadows, only outside it), so the mask is the lesion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from usbench.errors import InputError
from usbench.phantom.anatomy import smooth_noise
from usbench.phantom.imaging import pixel_grid
from usbench.phantom.params import SimParams

LESION_LABELS = ("benign", "malignant")
LABELS = ("normal",) + LESION_LABELS


@dataclass
class LesionSpec:
    """What a lesion looks like; geometry is used only when no mask is given."""

    kind: str  # "cyst", "solid" or "carcinoma"
    echo_db: float  # mean echogenicity inside, dB relative to parenchyma
    heterogeneity_db: float  # std of the interior texture, dB
    atten: float  # attenuation inside, dB/(cm·MHz)
    halo_db: float = 0.0  # echogenic halo level (0: none)
    halo_mm: float = 0.0
    edge_shadow_db: float = 0.0  # refraction shadows below the lateral edges (circumscribed lesions)
    center_mm: tuple[float, float] = (15.0, 0.0)  # (depth, lateral)
    semi_axes_mm: tuple[float, float] = (4.0, 6.0)  # (depth, lateral) before rotation
    angle_rad: float = 0.0
    harmonics: list[tuple[int, float, float]] = field(default_factory=list)  # (order, amplitude, phase)
    spicules: list[tuple[float, float, float]] = field(default_factory=list)  # (angle, amplitude, width)


def random_lesion(label: str, rng: np.random.Generator, params: SimParams,
                  parenchyma: tuple[np.ndarray, np.ndarray] | None = None) -> LesionSpec:
    """Draw a lesion of class ``label`` (benign or malignant) within BI-RADS descriptors.

    ``parenchyma`` (top and bottom depth in mm per column) places the lesion in the fibroglandular
    layer (look ``v0.1``); the ``busi`` look draws size, shape and position from BUSI's masks.
    """
    if params.look != "v0.1":
        return _random_lesion_busi(label, rng, params)
    depth, width = params.depth_mm, params.width_mm
    scale = min(depth / 30.0, width / 38.4)
    if label == "benign":
        cyst = rng.random() < 0.35
        lateral = rng.uniform(3.5, 8.5) * scale
        aspect = rng.uniform(0.45, 0.85)  # parallel: wider than tall
        harmonics = [(int(k), rng.uniform(0.0, 0.04), rng.uniform(0, 2 * np.pi)) for k in (2, 3)]
        lobes = []
        if rng.random() < 0.3:  # gently macrolobulated: two or three broad bulges
            lobes = [(rng.uniform(0, 2 * np.pi), rng.uniform(0.06, 0.12), rng.uniform(0.35, 0.6))
                     for _ in range(int(rng.integers(2, 4)))]
        spec = LesionSpec(
            kind="cyst" if cyst else "solid",
            echo_db=-40.0 if cyst else rng.uniform(-16.0, -9.0),
            heterogeneity_db=0.0 if cyst else rng.uniform(0.5, 1.5),
            atten=0.05 if cyst else rng.uniform(0.3, 0.5),
            edge_shadow_db=rng.uniform(4.0, 9.0) if rng.random() < 0.7 else 0.0,
            semi_axes_mm=(lateral * aspect, lateral),
            angle_rad=rng.uniform(-0.25, 0.25),
            harmonics=harmonics,
            spicules=lobes,
        )
    elif label == "malignant":
        lateral = rng.uniform(2.5, 5.5) * scale
        aspect = rng.uniform(0.95, 1.45)  # not parallel: taller than wide
        harmonics = [(int(k), rng.uniform(0.02, 0.09), rng.uniform(0, 2 * np.pi)) for k in range(2, 9)]
        harmonics += [(int(k), rng.uniform(0.0, 0.02), rng.uniform(0, 2 * np.pi)) for k in range(9, 22, 2)]
        n_spic = int(rng.integers(2, 9)) if rng.random() < 0.5 else 0
        spicules = [(rng.uniform(0, 2 * np.pi), rng.uniform(0.15, 0.45), rng.uniform(0.03, 0.07)) for _ in range(n_spic)]
        halo = rng.random() < 0.4
        spec = LesionSpec(
            kind="carcinoma",
            echo_db=rng.uniform(-20.0, -12.0),
            heterogeneity_db=rng.uniform(2.0, 4.0),
            atten=rng.uniform(1.3, 2.2),
            halo_db=rng.uniform(3.0, 6.0) if halo else 0.0,
            halo_mm=rng.uniform(0.6, 1.6) if halo else 0.0,
            semi_axes_mm=(lateral * aspect, lateral),
            angle_rad=rng.uniform(-0.35, 0.35),
            harmonics=harmonics,
            spicules=spicules,
        )
    else:
        raise InputError(f"no lesion for label {label!r}", f"lesion labels are {', '.join(LESION_LABELS)}")
    half_height = spec.semi_axes_mm[0]
    top = max(4.0 * depth / 30.0, half_height * 1.4)
    bottom = depth * 0.72 - half_height
    cx = rng.uniform(-0.22, 0.22) * width
    if parenchyma is not None:  # lesions grow in the fibroglandular layer: centre them in it where it fits
        col = int(np.clip((cx + width / 2) / width * len(parenchyma[0]), 0, len(parenchyma[0]) - 1))
        ptop, pbottom = float(parenchyma[0][col]), float(parenchyma[1][col])
        top = max(top, min(ptop + 0.6 * half_height, (ptop + pbottom) / 2))
        bottom = min(bottom, max(pbottom - 0.6 * half_height, top))
    cz = rng.uniform(top, max(top, bottom) + 1e-3)
    spec.center_mm = (float(cz), float(cx))
    return spec


# BUSI's lesion masks at the benchmark's 256×256 protocol (all 437 benign and 210 malignant images,
# masks of one image merged; printed by ``bench/phantom_realism.py --mask-stats``): ln(area / image
# area) and ln(bounding-box height / width in pixels) are close to normal; centroid depth and
# lateral offset as fractions of the image.
BUSI_MASKS = {
    "benign": dict(log_area=(-3.29, 1.14), log_aspect=(-0.38, 0.37), depth=(0.317, 0.115), lateral_sd=0.156),
    "malignant": dict(log_area=(-2.21, 0.83), log_aspect=(-0.15, 0.33), depth=(0.384, 0.113), lateral_sd=0.142),
}


def _random_lesion_busi(label: str, rng: np.random.Generator, params: SimParams) -> LesionSpec:
    """A lesion whose size, aspect and position follow BUSI's masks; appearance calibrated to BUSI images."""
    stats = BUSI_MASKS.get(label)
    if stats is None:
        raise InputError(f"no lesion for label {label!r}", f"lesion labels are {', '.join(LESION_LABELS)}")
    depth, width = params.depth_mm, params.width_mm
    area_frac = float(np.clip(np.exp(rng.normal(*stats["log_area"])), 0.002, 0.4))
    aspect_px = float(np.clip(np.exp(rng.normal(*stats["log_aspect"])), 0.25, 2.5))
    # Pixel aspect → mm aspect (the output grid has depth/h by width/w mm pixels, h = w).
    aspect = aspect_px * depth / width
    lateral = float(np.sqrt(area_frac * depth * width / (np.pi * aspect)))  # semi-axis, mm
    semi = (lateral * aspect, lateral)
    if label == "benign":
        cyst = rng.random() < 0.35
        harmonics = [(int(k), rng.uniform(0.0, 0.05), rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4)]
        lobes = []
        if rng.random() < 0.4:  # gently macrolobulated
            lobes = [(rng.uniform(0, 2 * np.pi), rng.uniform(0.06, 0.14), rng.uniform(0.3, 0.6))
                     for _ in range(int(rng.integers(2, 4)))]
        spec = LesionSpec(
            kind="cyst" if cyst else "solid",
            echo_db=-40.0 if cyst else rng.uniform(-18.0, -8.0),
            heterogeneity_db=0.0 if cyst else rng.uniform(0.5, 2.0),
            atten=0.05 if cyst else rng.uniform(0.2, 0.5),
            edge_shadow_db=rng.uniform(4.0, 9.0) if rng.random() < 0.6 else 0.0,
            semi_axes_mm=semi, angle_rad=rng.uniform(-0.2, 0.2), harmonics=harmonics, spicules=lobes)
    else:
        harmonics = [(int(k), rng.uniform(0.02, 0.09), rng.uniform(0, 2 * np.pi)) for k in range(2, 9)]
        harmonics += [(int(k), rng.uniform(0.0, 0.02), rng.uniform(0, 2 * np.pi)) for k in range(9, 22, 2)]
        n_spic = int(rng.integers(2, 9)) if rng.random() < 0.5 else 0
        spicules = [(rng.uniform(0, 2 * np.pi), rng.uniform(0.15, 0.4), rng.uniform(0.03, 0.07)) for _ in range(n_spic)]
        halo = rng.random() < 0.4
        spec = LesionSpec(
            kind="carcinoma", echo_db=rng.uniform(-14.0, -6.0), heterogeneity_db=rng.uniform(2.0, 4.0),
            atten=rng.uniform(0.5, 1.7), halo_db=rng.uniform(3.0, 6.0) if halo else 0.0,
            halo_mm=rng.uniform(0.6, 1.6) if halo else 0.0,
            semi_axes_mm=semi, angle_rad=rng.uniform(-0.3, 0.3), harmonics=harmonics, spicules=spicules)
    # Position: BUSI's centroid distribution, kept inside the image with a small margin.
    half_h, half_w = semi[0] * 1.15, semi[1] * 1.15
    cz = float(np.clip(rng.normal(stats["depth"][0], stats["depth"][1]) * depth,
                       min(half_h + 0.6, depth / 2), max(depth - half_h - 0.6, depth / 2)))
    cx = float(np.clip(rng.normal(0.0, stats["lateral_sd"]) * width,
                       -max(width / 2 - half_w - 0.6, 0.0), max(width / 2 - half_w - 0.6, 0.0)))
    spec.center_mm = (cz, cx)
    return spec


def lesion_mask(spec: LesionSpec, shape: tuple[int, int], params: SimParams) -> np.ndarray:
    """Rasterise the lesion outline: a rotated ellipse whose radius is modulated by margin harmonics and spicules."""
    z1, x1, _, _ = pixel_grid(shape, params)
    # Only the bounding box can be inside: the radius is at most 1 + the sum of modulation amplitudes.
    reach = max(spec.semi_axes_mm) * (1.0 + sum(abs(a) for _, a, _ in spec.harmonics) + sum(a for _, a, _ in spec.spicules))
    rsel = np.nonzero(np.abs(z1 - spec.center_mm[0]) <= reach)[0]
    csel = np.nonzero(np.abs(x1 - spec.center_mm[1]) <= reach)[0]
    mask = np.zeros(shape, bool)
    if len(rsel) and len(csel):
        r0, r1, c0, c1 = rsel[0], rsel[-1] + 1, csel[0], csel[-1] + 1
        mask[r0:r1, c0:c1] = _inside(spec, z1[r0:r1], x1[c0:c1])
    if not mask.any():  # too small for the grid: keep at least the centre pixel
        r = int(np.argmin(np.abs(z1 - spec.center_mm[0])))
        k = int(np.argmin(np.abs(x1 - spec.center_mm[1])))
        mask[r, k] = True
    return mask


def _inside(spec: LesionSpec, z1: np.ndarray, x1: np.ndarray) -> np.ndarray:
    dz = z1[:, None] - spec.center_mm[0]
    dx = x1[None, :] - spec.center_mm[1]
    c, s = np.cos(spec.angle_rad), np.sin(spec.angle_rad)
    u = (c * dx + s * dz) / spec.semi_axes_mm[1]  # lateral axis
    v = (-s * dx + c * dz) / spec.semi_axes_mm[0]  # depth axis
    rho = np.sqrt(u**2 + v**2)
    theta = np.arctan2(v, u)
    table_theta = np.linspace(-np.pi, np.pi, 4097)
    return rho <= np.interp(theta, table_theta, margin_radius(spec, table_theta))


def margin_radius(spec: LesionSpec, theta: np.ndarray) -> np.ndarray:
    """Relative radius of the outline at polar angle theta: 1 + harmonics + spicules."""
    radius = np.ones_like(theta)
    for order, amp, phase in spec.harmonics:
        radius += amp * np.cos(order * theta + phase)
    for angle, amp, width in spec.spicules:
        diff = np.angle(np.exp(1j * (theta - angle)))
        radius += amp * np.exp(-0.5 * (diff / width) ** 2)
    return radius


def spec_for_mask(label: str, mask: np.ndarray, rng: np.random.Generator, params: SimParams) -> LesionSpec:
    """Class appearance (texture, attenuation, halo) for a lesion whose shape is given by a mask."""
    spec = random_lesion(label, rng, params)
    z1, x1, _, _ = pixel_grid(mask.shape, params)
    rows, cols = np.nonzero(mask)
    spec.center_mm = (float(z1[rows].mean()), float(x1[cols].mean()))
    return spec


def apply_lesion(echo: np.ndarray, atten: np.ndarray, mask: np.ndarray, spec: LesionSpec, params: SimParams,
                 rng: np.random.Generator) -> None:
    """Write the lesion into the maps in place: its interior exactly on ``mask``; halo and edge shadows outside."""
    shape = mask.shape
    _, _, dz, dx = pixel_grid(shape, params)
    if spec.halo_db > 0 and spec.halo_mm > 0:
        rows, cols = np.nonzero(mask)
        pz, px = int(np.ceil(spec.halo_mm / dz)) + 1, int(np.ceil(spec.halo_mm / dx)) + 1
        r0, r1 = max(rows.min() - pz, 0), min(rows.max() + pz + 1, shape[0])
        c0, c1 = max(cols.min() - px, 0), min(cols.max() + px + 1, shape[1])
        box = (slice(r0, r1), slice(c0, c1))
        outside = ndimage.distance_transform_edt(~mask[box], sampling=(dz, dx))
        halo = (outside > 0) & (outside <= spec.halo_mm)
        sub = echo[box]
        sub[halo] = np.maximum(sub[halo], spec.halo_db * (1 - outside[halo] / spec.halo_mm) + 0.5 * spec.halo_db)
    if spec.edge_shadow_db > 0:
        _edge_shadows(echo, mask, spec.edge_shadow_db, dx)
    interior = np.float32(spec.echo_db)
    if spec.heterogeneity_db > 0:
        texture = smooth_noise(shape, (0.5 / dz, 0.5 / dx), rng)
        echo[mask] = (interior + spec.heterogeneity_db * texture)[mask]
    else:
        echo[mask] = interior
    atten[mask] = spec.atten


def _edge_shadows(echo: np.ndarray, mask: np.ndarray, level_db: float, dx: float) -> None:
    """Refraction (critical-angle) shadows: narrow dark bands below the lateral edges of a round lesion."""
    cols = np.nonzero(mask.any(axis=0))[0]
    rows = np.nonzero(mask.any(axis=1))[0]
    if len(cols) < 4:
        return
    h, w = mask.shape
    start = int((rows[0] + rows[-1]) // 2)
    half = max(1.0, 0.35 / dx)
    x = np.arange(w)[None, :]
    band = np.zeros((1, w), np.float32)
    for edge in (cols[0], cols[-1]):
        band = np.maximum(band, np.exp(-0.5 * ((x - edge) / half) ** 2))
    region = np.zeros((h, 1), np.float32)
    region[start:] = 1.0
    shadow = level_db * band * region
    shadow[mask] = 0.0
    echo -= shadow
