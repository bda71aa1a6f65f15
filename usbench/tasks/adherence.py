"""Mask adherence and lesion-presence consistency: does a generator draw what it was asked for?

Layers, each usable alone:

1. :func:`segment_imageset` — the segmenter's masks for a set (at the segmenter's size; cached in
   memory per weights and file, so per-label calls by the runner do not segment twice);
2. :func:`adherence_scores` — per-image Dice/HD95 between the segmented lesion and the
   conditioning mask the generator was given;
3. :class:`MaskAdherence` (``mask-adherence``) and :class:`LesionPresence` (``lesion-presence``) —
   the registered metrics, with seeded percentile-bootstrap intervals over images.

The **ceiling** is the segmenter's own Dice on the real test split (its card). The ratio to it uses
the ceiling matched to the generated label mix, ``sum_l share_l * ceiling_l``, so that a set of
mostly benign images is not compared with a ceiling dominated by normals. Its interval resamples
the generated images and the ceiling's test images together.

Size: the segmenter sees every image at its training size (images bicubic, masks nearest); when
that differs from the run's image size the result says so in ``details["notes"]``
(``strict_size = true`` makes it an error instead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from usbench.errors import ConfigError, InputError, NotEnoughImagesError
from usbench.imageset import ImageSet, size_label
from usbench.metrics.base import MetricContext, MetricResult
from usbench.tasks.segmentation_scores import bootstrap_mean, dice_hd95
from usbench.tasks.segmenter import Segmenter, has_lesion_truth, lesion_mask_of

LESION_LABELS = ("benign", "malignant")
_PRED_CACHE: dict[tuple, np.ndarray] = {}  # (weights sha256, file, mtime/size, size) -> predicted mask
_CACHE_LIMIT = 20000


@dataclass
class AdherenceConfig:
    segmenter: str = ""  # folder of a trained segmenter; default: the run's option, then the cache
    strict_size: bool = False  # refuse (instead of resizing) when the run's size differs from the segmenter's
    batch_size: int = 16


def _config(cls_cfg, config: dict[str, Any], where: str):
    from usbench.generators.base import config_from_dict

    return config_from_dict(cls_cfg, dict(config or {}), where)


def load_segmenter_for(ctx: MetricContext, cfg: AdherenceConfig, metric: str) -> tuple[Segmenter, list[str]]:
    """The segmenter named by the metric's config (``segmenter``), else by the run
    (``ctx.segmenter``), else the default cache folder; plus notes about resizing.
    Refuses labels the segmenter never saw."""
    seg = Segmenter.load(cfg.segmenter or ctx.segmenter or None)
    notes = []
    if ctx.image_size and ctx.image_size != seg.image_size:
        run_size = ctx.image_size if isinstance(ctx.image_size, int) else size_label(ctx.image_size)
        if cfg.strict_size:
            raise ConfigError(
                f"{metric}: the segmenter in {seg.folder} was trained at {seg.image_size} px but the run uses {run_size} px",
                f"retrain it with usbench segmenter train --size {ctx.image_size}, or drop strict_size" if isinstance(ctx.image_size, int)
                else f"pass --image-size {seg.image_size}, or drop strict_size",
            )
        notes.append(f"images resized to the segmenter's {seg.image_size} px (run size {run_size} px)")
    unknown = sorted({r.label for r in ctx.generated.records if r.label} - set(seg.labels))
    if unknown:
        raise ConfigError(
            f"{metric}: the segmenter was trained on labels {', '.join(seg.labels)} but the generated set has {', '.join(unknown)}",
            "retrain it on a reference set with those labels (usbench segmenter train --data ...)",
        )
    return seg, notes


def _stamp(path: Path) -> tuple[int, int]:
    st = Path(path).stat()
    return st.st_mtime_ns, st.st_size  # a file rewritten in place is segmented again


def segment_imageset(seg: Segmenter, imageset: ImageSet, batch_size: int = 16) -> np.ndarray:
    """Bool masks (N, S, S) predicted for every image of the set at the segmenter's size S."""
    size = seg.image_size
    sha = seg.card.get("weights_sha256", id(seg))
    keys = [(sha, str(r.file), _stamp(r.file), size) for r in imageset.records]
    todo = [i for i, k in enumerate(keys) if k not in _PRED_CACHE]
    for start in range(0, len(todo), 256):
        chunk = todo[start:start + 256]
        images = np.stack([imageset.load_image(imageset.records[i], size) for i in chunk])
        for i, m in zip(chunk, seg.predict(images, batch_size)):
            if len(_PRED_CACHE) >= _CACHE_LIMIT:
                _PRED_CACHE.pop(next(iter(_PRED_CACHE)))
            _PRED_CACHE[keys[i]] = m
    if not keys:
        return np.zeros((0, size, size), bool)
    return np.stack([_PRED_CACHE[k] for k in keys])


def adherence_scores(seg: Segmenter, generated: ImageSet, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-image Dice and HD95 (pixels at the segmenter's size) between segmented lesion and
    conditioning mask, for the records that have one (a normal record without one: an empty mask);
    and their labels."""
    recs = [r for r in generated.records if has_lesion_truth(r)]  # a normal request without a mask asks for no lesion
    if not any(r.mask_file is not None for r in generated.records):
        raise InputError(
            f"mask adherence is impossible: {generated.name} has no conditioning masks",
            "it applies to mask-conditioned generators (e.g. controlnet-busi, phantom); use lesion-presence for text-conditioned ones",
        )
    subset = generated.subset(recs)
    pred = segment_imageset(seg, subset, batch_size)
    target = np.stack([lesion_mask_of(subset, r, seg.image_size) for r in subset.records])
    dice, hd95 = dice_hd95(pred, target)
    return dice, hd95, [r.label for r in subset.records]


def matched_ceiling(card: dict, labels: list[str], metric: str = "dice") -> tuple[float, dict[str, float]]:
    """The ceiling weighted by the label mix of ``labels``: sum over labels of share × ceiling."""
    per_label = card["ceiling"]["per_label"]
    shares = {l: labels.count(l) / len(labels) for l in set(labels)}
    missing = [l for l in shares if l not in per_label]
    if missing:
        raise ConfigError(
            f"the segmenter's test split has no {', '.join(missing)} images, so its ceiling for them is unknown",
            "retrain it on a reference set with those labels",
        )
    return float(sum(s * per_label[l][metric] for l, s in shares.items())), shares


def ratio_interval(dice: np.ndarray, labels: list[str], card: dict, n_bootstrap: int, seed: int,
                   ci_level: float = 0.95) -> tuple[float, float, float, float]:
    """Ratio of mean Dice to the matched ceiling; percentile bootstrap resampling the generated images
    and, per label, the ceiling's test images. Returns (ratio, low, high, ceiling)."""
    ceiling, shares = matched_ceiling(card, labels)
    if ceiling <= 0:
        raise NotEnoughImagesError("the segmenter's ceiling Dice is 0: no ratio can be formed", "retrain the segmenter")
    ratio = float(dice.mean() / ceiling)
    if n_bootstrap <= 0 or len(dice) < 2:
        return ratio, math.nan, math.nan, ceiling
    rng = np.random.default_rng(seed)
    gen_means = dice[rng.integers(0, len(dice), size=(n_bootstrap, len(dice)))].mean(axis=1)
    ceil_boot = np.zeros(n_bootstrap)
    per_image = card["ceiling"]["per_image"]
    for label, share in shares.items():
        vals = np.array([p["dice"] for p in per_image if p["label"] == label])
        ceil_boot += share * vals[rng.integers(0, len(vals), size=(n_bootstrap, len(vals)))].mean(axis=1)
    ratios = gen_means / np.maximum(ceil_boot, 1e-12)
    a = (1 - ci_level) / 2
    return ratio, float(np.quantile(ratios, a)), float(np.quantile(ratios, 1 - a)), ceiling


class MaskAdherence:
    """Dice, HD95 and Dice-to-ceiling ratio between segmented lesions and conditioning masks."""

    name: ClassVar[str] = "mask-adherence"
    higher_is_better: ClassVar[bool] = True
    extractor: ClassVar[str | None] = None
    needs: ClassVar[frozenset[str]] = frozenset({"images", "masks", "weights"})
    min_images: ClassVar[int] = 2

    def __init__(self, config: AdherenceConfig | None = None):
        self.config = config or AdherenceConfig()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "MaskAdherence":
        return cls(_config(AdherenceConfig, config, "metric mask-adherence"))

    def compute(self, ctx: MetricContext) -> list[MetricResult]:
        seg, notes = load_segmenter_for(ctx, self.config, self.name)
        dice, hd95, labels = adherence_scores(seg, ctx.generated, self.config.batch_size)
        if len(dice) < self.min_images:
            raise NotEnoughImagesError(f"mask-adherence needs at least {self.min_images} images with conditioning masks, got {len(dice)}",
                                       "generate more images")
        skipped = len(ctx.generated) - len(dice)
        if skipped:
            notes.append(f"{skipped} benign/malignant images without a conditioning mask were left out")
        card = seg.card
        d, d_lo, d_hi = bootstrap_mean(dice, ctx.n_bootstrap, ctx.seed, ctx.ci_level)
        h, h_lo, h_hi = bootstrap_mean(hd95, ctx.n_bootstrap, ctx.seed, ctx.ci_level)
        ratio, r_lo, r_hi, ceiling = ratio_interval(dice, labels, card, ctx.n_bootstrap, ctx.seed, ctx.ci_level)
        hd_ceiling, _ = matched_ceiling(card, labels, "hd95")
        details = {
            "segmenter": str(seg.folder), "segmenter_weights_sha256": card.get("weights_sha256"),
            "segmenter_data_hash": card["data"]["content_hash"], "segmenter_image_size": seg.image_size,
            "ceiling_dice": ceiling, "ceiling_hd95": hd_ceiling,
            "counts": {l: labels.count(l) for l in sorted(set(labels))},
            "empty_mask_rule": "Dice: both empty 1, one empty 0; HD95: both empty 0, one empty the image diagonal",
            "hd95_unit": f"pixels at {seg.image_size} px", "seed": ctx.seed, "n_bootstrap": ctx.n_bootstrap,
            "notes": notes,
        }
        common = dict(n_generated=len(dice), n_reference=int(card["ceiling"]["n"]), ci_level=ctx.ci_level)
        return [
            MetricResult("mask_dice", d, d_lo, d_hi, higher_is_better=True, details=details, **common),
            MetricResult("mask_hd95", h, h_lo, h_hi, higher_is_better=False, details=details, **common),
            MetricResult("mask_dice_ratio", ratio, r_lo, r_hi, higher_is_better=True, details=details, **common),
        ]


@dataclass
class PresenceConfig:
    segmenter: str = ""
    strict_size: bool = False
    batch_size: int = 16


class LesionPresence:
    """Consistency of label and segmented lesion: normal → no lesion found; benign/malignant → one found.

    For text-conditioned generators, which get no masks. "Found" means a predicted lesion area of at
    least the card's ``min_lesion_fraction`` of the image. The segmenter's own rate on the real test
    split (matched to the label mix) is given as the ceiling in the details.
    """

    name: ClassVar[str] = "lesion-presence"
    higher_is_better: ClassVar[bool] = True
    extractor: ClassVar[str | None] = None
    needs: ClassVar[frozenset[str]] = frozenset({"images", "weights"})
    min_images: ClassVar[int] = 2

    def __init__(self, config: PresenceConfig | None = None):
        self.config = config or PresenceConfig()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "LesionPresence":
        return cls(_config(PresenceConfig, config, "metric lesion-presence"))

    def compute(self, ctx: MetricContext) -> MetricResult:
        seg, notes = load_segmenter_for(ctx, AdherenceConfig(self.config.segmenter, self.config.strict_size), self.name)
        known = ("normal",) + LESION_LABELS
        recs = [r for r in ctx.generated.records if r.label in known]
        if len(recs) < self.min_images:
            raise NotEnoughImagesError(
                f"lesion-presence needs at least {self.min_images} images labelled normal, benign or malignant, got {len(recs)}",
                "generate labelled images",
            )
        if len(recs) < len(ctx.generated):
            notes.append(f"{len(ctx.generated) - len(recs)} images with other labels were left out")
        subset = ctx.generated.subset(recs)
        found = seg.lesion_found(segment_imageset(seg, subset, self.config.batch_size))
        labels = [r.label for r in recs]
        consistent = np.array([f == (l != "normal") for f, l in zip(found, labels)], dtype=np.float64)
        rate, lo, hi = bootstrap_mean(consistent, ctx.n_bootstrap, ctx.seed, ctx.ci_level)
        ceiling_per_label = seg.card["ceiling"]["presence"]["per_label"]
        shares = {l: labels.count(l) / len(labels) for l in set(labels)}
        ceiling = (float(sum(s * ceiling_per_label[l] for l, s in shares.items()))
                   if all(l in ceiling_per_label for l in shares) else math.nan)
        per_label = {l: float(consistent[np.asarray(labels) == l].mean()) for l in sorted(shares)}
        return MetricResult(
            "presence_consistency", rate, lo, hi, n_generated=len(recs), n_reference=int(seg.card["ceiling"]["n"]),
            higher_is_better=True, ci_level=ctx.ci_level,
            details={"per_label": per_label, "ceiling": None if math.isnan(ceiling) else ceiling,
                     "min_lesion_fraction": seg.min_fraction, "segmenter": str(seg.folder),
                     "segmenter_weights_sha256": seg.card.get("weights_sha256"), "seed": ctx.seed,
                     "n_bootstrap": ctx.n_bootstrap, "notes": notes},
        )


__all__ = ["AdherenceConfig", "LesionPresence", "MaskAdherence", "PresenceConfig", "adherence_scores",
           "matched_ceiling", "ratio_interval", "segment_imageset"]
