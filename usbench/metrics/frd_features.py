"""The radiomic features of FRD v1 (Konz, Osuala et al. 2026), as frd-score 1.0.1 extracts them.

frd-score runs pyradiomics 3.0.1 with its ``configs/extraction_2d.yaml``; this module does the
same steps, using the libraries pyradiomics itself uses for them, and computes the feature
classes with the vectorised numpy code of :mod:`usbench.metrics.radiomics` (checked against
pyradiomics feature by feature). Per image (read as float32, like ``sitk.ReadImage(...,
sitkFloat32)``):

1. mask: the given one, or the whole image with its corner pixel left out (frd-score's
   workaround for a pyradiomics bug); the 2-D image becomes a (1, H, W) volume, spacing 1;
2. normalisation (``SimpleITK.Normalize``: whole image to mean 0, std 1) times 100;
3. resampling to 2 px spacing in-plane with a B-spline (SimpleITK), on pyradiomics' grid
   (``imageoperations.resampleImage``: aligned to the origin, cropped to the mask's bounding
   box plus 10 px), the mask by nearest neighbour;
4. image types: the original (resampled) image and the four sub-bands LL, LH, HL, HH of one
   level of the stationary wavelet transform ``coif1`` (PyWavelets ``swtn`` over the two
   in-plane axes, odd sizes wrap-padded, as ``imageoperations._swt3``). LoG is configured by
   frd-score but yields no feature on a 2-D image in pyradiomics 3.0.1, so it is not here;
5. per image type, inside the mask's bounding box: first order (``voxelArrayShift`` 300, voxel
   volume 2·2·1 for TotalEnergy), GLCM (its 22 listed features), GLRLM, GLSZM, NGTDM, grey
   levels by fixed bin width 5 (pyradiomics' ``getBinEdges`` + ``numpy.digitize``); no GLDM;
6. the numeric diagnostics pyradiomics adds and frd-score v1 keeps (mean/min/max of the image
   as loaded and after resampling, voxel and connected-volume counts of the mask, mean/min/max
   inside the resampled mask).

13 + 5·77 = 398 values per image. The distance itself (float32, reference z-scores, ln d²) is
in :mod:`usbench.metrics.distribution`.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from usbench.errors import ConfigError, InputError
from usbench.metrics import radiomics as R

BIN_WIDTH = 5
NORMALIZE_SCALE = 100
SPACING = 2.0
PAD_DISTANCE = 10
VOXEL_ARRAY_SHIFT = 300
WAVELET = "coif1"
IMAGE_TYPES = ["original", "wavelet-LL", "wavelet-LH", "wavelet-HL", "wavelet-HH"]
DIAGNOSTICS = ["Image-original_Mean", "Image-original_Minimum", "Image-original_Maximum", "Mask-original_VoxelNum",
               "Mask-original_VolumeNum", "Image-interpolated_Mean", "Image-interpolated_Minimum",
               "Image-interpolated_Maximum", "Mask-interpolated_VoxelNum", "Mask-interpolated_VolumeNum",
               "Mask-interpolated_Mean", "Mask-interpolated_Minimum", "Mask-interpolated_Maximum"]
FEATURE_NAMES = [f"diagnostics_{n}" for n in DIAGNOSTICS] + [f"{t}_{n}" for t in IMAGE_TYPES for n in R.FEATURE_NAMES]


def pyradiomics_levels(values: np.ndarray, bin_width: float = BIN_WIDTH) -> np.ndarray:
    """Grey levels 1, 2, … exactly as pyradiomics bins them (edges from ``numpy.arange`` in the
    values' own dtype, then ``numpy.digitize``), so float32 ties fall on the same side."""
    minimum, maximum = values.min(), values.max()
    low = minimum - (minimum % bin_width)
    edges = np.arange(low, maximum + 2 * bin_width, bin_width)
    if len(edges) == 1:  # a flat region: one bin
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    return np.digitize(values, edges).astype(np.int64)


def class_features(image: np.ndarray, mask: np.ndarray, voxel_volume: float) -> list[float]:
    """The 77 feature-class values of one (float32) 2-D image type inside ``mask``."""
    x = image[mask]
    L = np.zeros(image.shape, np.int64)
    L[mask] = pyradiomics_levels(x)
    first = R.firstorder_features(x.astype(np.float64), L[mask], VOXEL_ARRAY_SHIFT)
    first[1] = first[0] * voxel_volume  # TotalEnergy = voxel volume × Energy
    return first + R.glcm_features(L, mask) + R.ngtdm_features(L, mask) + R.glrlm_features(L, mask) + R.glszm_features(L, mask)


def _volumes(mask: np.ndarray) -> int:
    from scipy.ndimage import label

    return int(label(mask, structure=np.ones((3,) * mask.ndim))[1])


def _resample(image, mask):
    """pyradiomics' ``resampleImage`` for a (1, H, W) volume of spacing 1 to spacing (2, 2, 1)."""
    import SimpleITK as sitk

    arr = sitk.GetArrayViewFromImage(mask)
    zz, yy, xx = np.nonzero(arr)
    lo = np.array([xx.min(), yy.min(), zz.min()], float)
    size = np.array([xx.max(), yy.max(), zz.max()], float) - lo + 1
    mask_size = np.array(mask.GetSize(), float)
    spacing = np.array([SPACING, SPACING, 1.0])
    spacing = np.where(size != 1, spacing, 1.0)  # no resampling where the mask spans one slice
    ratio = 1.0 / spacing
    new_lo = np.floor((lo - 0.5) * ratio - PAD_DISTANCE)
    new_hi = np.ceil((lo + size - 0.5) * ratio + PAD_DISTANCE)
    max_hi = np.ceil(mask_size * ratio) - 1
    new_lo = np.where(new_lo < 0, 0, new_lo)
    new_hi = np.where(new_hi > max_hi, max_hi, new_hi)
    new_size = np.array(new_hi - new_lo + 1, dtype="int").tolist()
    origin = mask.TransformContinuousIndexToPhysicalPoint(0.5 * (spacing - 1.0) + new_lo / ratio)
    rif = sitk.ResampleImageFilter()
    rif.SetOutputSpacing(spacing.tolist())
    rif.SetOutputDirection(mask.GetDirection())
    rif.SetSize(new_size)
    rif.SetOutputOrigin(origin)
    rif.SetOutputPixelType(image.GetPixelID())
    rif.SetInterpolator(sitk.sitkBSpline)
    out_image = rif.Execute(image)
    rif.SetOutputPixelType(mask.GetPixelID())
    rif.SetInterpolator(sitk.sitkNearestNeighbor)
    return out_image, rif.Execute(mask), float(np.prod(spacing))


def wavelet_bands(volume: np.ndarray) -> dict[str, np.ndarray]:
    """LL, LH, HL, HH of one level of ``coif1`` SWT over the in-plane axes of a (1, h, w) volume,
    as pyradiomics' ``_swt3`` (odd sizes padded by wrapping, then cropped back)."""
    import pywt

    shape = volume.shape
    data = np.pad(volume, tuple((0, 1 if n % 2 else 0) for n in shape), "wrap")
    dec = pywt.swtn(data, pywt.Wavelet(WAVELET), level=1, start_level=0, axes=(2, 1))[0]
    crop = tuple(slice(None, -1 if n % 2 else None) for n in shape)
    return {"wavelet-" + k.replace("a", "L").replace("d", "H"): v[crop] for k, v in dec.items()}


def frd_v1_features(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The :data:`FEATURE_NAMES` vector of one 2-D image (whole image, or inside ``mask``).

    Example:
        >>> import numpy as np
        >>> img = (np.add.outer(np.arange(32), np.arange(32)) * 4 % 256).astype(np.uint8)
        >>> f = frd_v1_features(img)
        >>> f.shape == (len(FEATURE_NAMES),), float(f[0]) == float(img.mean())
        ((True,), True)
    """
    import SimpleITK as sitk

    img = np.asarray(image)
    if img.ndim != 2:
        raise InputError(f"FRD needs 2-D grayscale images, got shape {img.shape}", "convert to grayscale")
    if mask is None:
        m = np.ones(img.shape, np.uint8)
        m[0, 0] = 0  # frd-score's workaround for a pyradiomics bug on whole-image masks
    else:
        m = np.asarray(mask).astype(np.uint8)
        if m.sum() <= 1:
            raise InputError("FRD needs a mask region of at least 2 pixels", "check the mask")
    vol = img.astype(np.float32)[None]
    s_img = sitk.GetImageFromArray(vol)
    s_mask = sitk.GetImageFromArray(m[None])
    diag = [float(np.mean(vol)), float(vol.min()), float(vol.max()), float(m.sum()), float(_volumes(m))]
    s_img = sitk.Normalize(s_img) * NORMALIZE_SCALE
    s_img, s_mask, voxel_volume = _resample(s_img, s_mask)
    res = sitk.GetArrayFromImage(s_img)
    rmask = sitk.GetArrayFromImage(s_mask).astype(bool)
    if rmask.sum() < 2:
        raise InputError("FRD: the mask has fewer than 2 pixels after resampling to 2 px", "use larger masks or images")
    inside = res[rmask]
    diag += [float(np.mean(res)), float(res.min()), float(res.max()), float(rmask.sum()), float(_volumes(rmask)),
             float(np.mean(inside)), float(inside.min()), float(inside.max())]
    zz, yy, xx = np.nonzero(rmask)
    box = (slice(zz.min(), zz.max() + 1), slice(yy.min(), yy.max() + 1), slice(xx.min(), xx.max() + 1))
    bands = {"original": res, **wavelet_bands(res)}
    crop_mask = rmask[box][0]
    values = list(diag)
    for name in IMAGE_TYPES:
        values += class_features(np.ascontiguousarray(bands[name][box][0]), crop_mask, voxel_volume)
    return np.array(values, dtype=np.float64)


class FrdV1Extractor:
    """FRD v1's radiomic features of whole images (see the module docstring). No weights.

    Options: ``workers`` (processes; default: all cores, 1 for small sets).
    """

    name = "frd-v1"
    feature_names = FEATURE_NAMES

    def __init__(self, workers: int | None = None):
        self.workers = workers

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> "FrdV1Extractor":
        unknown = set(options) - {"workers"}
        if unknown:
            raise ConfigError(f"unknown frd-v1 extractor option(s) {sorted(unknown)}", "known: workers")
        return cls(**options)

    def fingerprint(self) -> str:
        return (f"frd-v1|frd-score-1.0.1|norm{NORMALIZE_SCALE}|bspline{SPACING}|original+{WAVELET}|bw{BIN_WIDTH}"
                f"|shift{VOXEL_ARRAY_SHIFT}|{len(FEATURE_NAMES)}")

    def provenance(self) -> dict[str, Any]:
        return {"extractor": self.name, "definition": "frd-score 1.0.1 v1 (pyradiomics 3.0.1 settings)",
                "features": len(FEATURE_NAMES)}

    def extract(self, images: Iterable[np.ndarray], n: int) -> np.ndarray:
        import os
        from concurrent.futures import ProcessPoolExecutor

        from usbench.common import one_thread_per_worker, single_blas_thread

        workers = self.workers if self.workers is not None else (os.cpu_count() or 1)
        if workers <= 1 or n < 32:
            with single_blas_thread():
                rows = [frd_v1_features(im) for im in images]
        else:
            import SimpleITK  # noqa: F401  (loaded before the fork, so the initializer sets its threads)

            with ProcessPoolExecutor(workers, initializer=one_thread_per_worker) as pool:
                rows = list(pool.map(frd_v1_features, images, chunksize=8))
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES))
