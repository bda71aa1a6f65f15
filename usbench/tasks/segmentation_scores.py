"""Dice and HD95 of binary masks (MONAI's metrics) with the empty-mask cases defined, never NaN.

- Dice: both empty → 1 (nothing to find, nothing found); one empty → 0.
- HD95 (95th percentile Hausdorff distance, pixels at the compared size): both empty → 0;
  one empty → the image diagonal, the largest distance possible on that grid.
"""

from __future__ import annotations

import math
import warnings

import numpy as np


def dice_hd95(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image Dice and HD95 of bool masks shaped (N, H, W); returns two float64 arrays of length N."""
    import torch
    from monai.metrics import DiceMetric, HausdorffDistanceMetric

    pred = np.asarray(pred, dtype=bool)
    target = np.asarray(target, dtype=bool)
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(f"masks must both be (N, H, W), got {pred.shape} and {target.shape}")
    n, h, w = pred.shape
    if n == 0:
        return np.zeros(0), np.zeros(0)
    p = torch.from_numpy(pred[:, None].astype(np.float32))
    t = torch.from_numpy(target[:, None].astype(np.float32))
    dice = DiceMetric(include_background=True, reduction="none", ignore_empty=False)(p, t)
    dice = dice.numpy().reshape(n).astype(np.float64)

    p_any, t_any = pred.reshape(n, -1).any(1), target.reshape(n, -1).any(1)
    hd95 = np.where(p_any | t_any, math.hypot(h, w), 0.0)  # one empty: diagonal; both empty: 0
    both = p_any & t_any
    if both.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metric = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")
            hd95[both] = metric(p[both], t[both]).numpy().reshape(-1)
    return dice, hd95


def bootstrap_mean(values: np.ndarray, n_bootstrap: int, seed: int, ci_level: float = 0.95) -> tuple[float, float, float]:
    """Mean with a seeded percentile bootstrap interval over the values (images)."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2 or n_bootstrap <= 0:
        return mean, math.nan, math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_bootstrap, len(values)))
    means = values[idx].mean(axis=1)
    a = (1 - ci_level) / 2
    return mean, float(np.quantile(means, a)), float(np.quantile(means, 1 - a))
