"""Measurements shared by the phantom tests (speckle statistics, grain size, regional levels)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from usbench.phantom.imaging import pixel_grid

# Rayleigh-distributed envelope A: E[A]/std(A) = sqrt(pi/(4-pi)) = 1.913 (Burckhardt 1978);
# std of 20·log10(A) = (20/ln 10)·(pi/sqrt(24)) = 5.57 dB (Wagner et al. 1983).
RAYLEIGH_SNR = float(np.sqrt(np.pi / (4 - np.pi)))
RAYLEIGH_LOG_STD_DB = float(20 / np.log(10) * np.pi / np.sqrt(24))


def autocov_fwhm_px(intensity: np.ndarray, axis: int) -> float:
    """Full width at half maximum (pixels) of the normalised intensity autocovariance along ``axis``."""
    centred = intensity - intensity.mean()
    n = centred.shape[axis]
    spectrum = np.fft.fft(centred, n=2 * n, axis=axis)
    ac = np.fft.ifft(np.abs(spectrum) ** 2, axis=axis).real
    ac = ac.mean(axis=1 - axis)[:n]
    ac /= ac[0]
    k = int(np.nonzero(ac < 0.5)[0][0])
    return 2 * ((k - 1) + (ac[k - 1] - 0.5) / (ac[k - 1] - ac[k]))


def mm_to_px(shape, params):
    _, _, dz, dx = pixel_grid(shape, params)
    return dz, dx


def ring(mask: np.ndarray, inner_px: float, outer_px: float) -> np.ndarray:
    d = ndimage.distance_transform_edt(~mask)
    return (d > inner_px) & (d <= outer_px)


def erode(mask: np.ndarray, px: int) -> np.ndarray:
    return ndimage.binary_erosion(mask, iterations=px)
