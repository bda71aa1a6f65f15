"""The lesion segmenter behind mask adherence: a MONAI 2-D U-Net, its training, its card.

``train_segmenter`` splits the reference set (``usbench.datasets.splits``), holds out a validation
part of the training split, trains with augmentation (horizontal flips, small affine jitter, gain
and gamma) on Dice + cross-entropy, keeps the epoch with the best validation Dice, and measures its
own Dice and HD95 on the test split: the **ceiling** no generator can be judged above.

A trained segmenter is a folder::

    segmenter.pt   the U-Net's state_dict
    card.json      data hash, split, epochs, image size, labels, validation Dice, ceiling (overall,
                   per label, per image), lesion-presence ceiling, weights sha256, versions

>>> from usbench.tasks.segmenter import SegmenterConfig
>>> SegmenterConfig().image_size
256
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from usbench.errors import ConfigError, InputError, NotEnoughImagesError, OutputError, WeightsError
from usbench.imageset import ImageSet, atomic_write_bytes, atomic_write_text, ensure_writable_dir, sha256_file
from usbench.tasks.segmentation_scores import dice_hd95
from usbench.versions import versions

WEIGHTS_FILE = "segmenter.pt"
CARD_FILE = "card.json"
CARD_VERSION = 1


def default_segmenter_dir() -> Path:
    """Where ``usbench segmenter train`` writes unless told otherwise, and where metrics look."""
    from usbench.weights import usbench_cache

    return usbench_cache() / "models" / "segmenter"


@dataclass
class SegmenterConfig:
    image_size: int = 256
    epochs: int = 40
    batch_size: int = 16
    learning_rate: float = 5e-3
    channels: tuple = (16, 32, 64, 128)
    num_res_units: int = 1
    split: str = "seeded"
    test_fraction: float = 0.2
    val_fraction: float = 0.15
    seed: int = 0
    augment: bool = True
    threshold: float = 0.5
    min_lesion_fraction: float = 0.002  # predicted area (fraction of the image) that counts as "a lesion found"
    largest_only: bool = True  # keep the largest predicted component only
    calibrate_presence: bool = True  # pick min_lesion_fraction on the validation images (see calibrate_min_fraction)

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if self.image_size < 16 or self.image_size % 2 ** (len(self.channels) - 1):
            raise ConfigError(
                f"segmenter image size {self.image_size} must be at least 16 and divisible by {2 ** (len(self.channels) - 1)}",
                "use e.g. --size 64, 128 or 256",
            )
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}", "e.g. --epochs 40")
        if not 0 < self.val_fraction < 0.5:
            raise ConfigError(f"validation fraction must be in (0, 0.5), got {self.val_fraction}", "e.g. 0.15")


# --------------------------------------------------------------------------------------------
# network and pixels


def build_unet(channels: Sequence[int], num_res_units: int = 1):
    from monai.networks.nets import UNet

    channels = tuple(int(c) for c in channels)
    return UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=channels,
                strides=(2,) * (len(channels) - 1), num_res_units=num_res_units, norm="batch")


def lesion_mask_of(imageset: ImageSet, rec, size: int) -> np.ndarray | None:
    """The record's lesion mask at ``size``; an empty mask for a *normal* record without a mask file
    (normal means no lesion: BUSI stores empty masks, the phantom set none); None otherwise."""
    m = imageset.load_mask(rec, size)
    if m is None and rec.label == "normal":
        return np.zeros((size, size), bool)
    return m


def has_lesion_truth(rec) -> bool:
    """Whether a record says where its lesion is (a mask file, or the label normal)."""
    return rec.mask_file is not None or rec.label == "normal"


def load_arrays(imageset: ImageSet, size: int, need_masks: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Images as float32 (N, 1, size, size) in [0, 1], masks as bool (N, size, size) (or None)."""
    images = np.stack([imageset.load_image(r, size) for r in imageset.records]).astype(np.float32) / 255.0
    if not need_masks:
        return images[:, None], None
    masks = []
    for r in imageset.records:
        m = lesion_mask_of(imageset, r, size)
        if m is None:
            raise InputError(f"image {r.id} of {imageset.name} has no mask", "every training image needs a mask (empty for normal)")
        masks.append(m)
    return images[:, None], np.stack(masks)


def augment(x, y, gen):
    """Flip left-right, jitter by a small affine (±10°, ±10 % scale, ±8 % shift), gain and gamma.
    ``y`` (masks, moved with the image) may be None.

    No vertical flips: depth runs downwards in B-mode and shadowing falls below a lesion."""
    import torch
    import torch.nn.functional as F

    b = x.shape[0]
    flip = torch.rand(b, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if y is not None:
        y = torch.where(flip[:, None, None, None], y.flip(-1), y)
    ang = (torch.rand(b, generator=gen) - 0.5) * 2 * math.radians(10)
    scale = 1 + (torch.rand(b, generator=gen) - 0.5) * 0.2
    shift = (torch.rand(b, 2, generator=gen) - 0.5) * 0.16
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if y is not None:
        y = F.grid_sample(y, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    gain = 0.8 + 0.4 * torch.rand(b, 1, 1, 1, generator=gen)
    gamma = torch.exp((torch.rand(b, 1, 1, 1, generator=gen) - 0.5) * 0.6)
    x = (x.clamp(0, 1) ** gamma * gain).clamp(0, 1)
    return x, y


def _predict_logits(net, images: np.ndarray, batch_size: int):
    import torch

    out = []
    net.eval()
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            out.append(net(torch.from_numpy(images[i:i + batch_size])).numpy())
    return np.concatenate(out)[:, 0] if out else np.zeros((0,) + images.shape[2:], np.float32)


def _masks_from_logits(logits: np.ndarray, threshold: float, min_fraction: float = 0.0,
                       largest_only: bool = False) -> np.ndarray:
    """Threshold the sigmoid, then drop connected components smaller than ``min_fraction`` of the image
    (speckle-sized false positives would otherwise turn every normal image's Dice into 0) and, with
    ``largest_only``, every component but the largest (one lesion per image, as in nearly all of BUSI
    and in the phantom; a stray blob far away would otherwise dominate HD95)."""
    masks = 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50))) > threshold
    if min_fraction > 0 or largest_only:
        from scipy.ndimage import label as components

        min_area = min_fraction * masks.shape[1] * masks.shape[2]
        for k, m in enumerate(masks):
            lab, n = components(m)
            if not n:
                continue
            areas = np.bincount(lab.ravel())
            areas[0] = 0
            keep = np.flatnonzero(areas >= max(min_area, 1))
            if largest_only and len(keep):
                keep = np.array([int(np.argmax(areas))]) if areas.max() >= min_area else keep[:0]
            masks[k] = np.isin(lab, keep) & m
    return masks


# --------------------------------------------------------------------------------------------
# the trained segmenter


@dataclass
class Segmenter:
    """A trained U-Net and its card; ``predict`` returns bool masks at ``image_size``."""

    net: Any
    card: dict
    folder: Path | None = None

    @property
    def image_size(self) -> int:
        return int(self.card["image_size"])

    @property
    def labels(self) -> list[str]:
        return list(self.card["labels"])

    @property
    def threshold(self) -> float:
        return float(self.card["config"]["threshold"])

    def predict(self, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """Bool masks (N, S, S) for uint8 images (N, S, S) at the segmenter's size S."""
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1:] != (self.image_size, self.image_size):
            raise ValueError(f"predict needs images of shape (N, {self.image_size}, {self.image_size}), got {images.shape}")
        x = (images.astype(np.float32) / 255.0)[:, None]
        return _masks_from_logits(_predict_logits(self.net, x, batch_size), self.threshold, self.min_fraction,
                                  self.largest_only)

    @property
    def largest_only(self) -> bool:
        return bool(self.card["config"].get("largest_only", False))

    @property
    def min_fraction(self) -> float:
        return float(self.card["config"]["min_lesion_fraction"])

    def lesion_found(self, masks: np.ndarray) -> np.ndarray:
        """Whether each predicted mask holds a lesion: area at least ``min_lesion_fraction`` of the image."""
        frac = masks.reshape(len(masks), -1).mean(axis=1)
        return frac >= self.min_fraction

    @classmethod
    def load(cls, folder: str | Path | None = None) -> "Segmenter":
        """Read a segmenter folder; :class:`WeightsError` with the training command when absent."""
        import torch

        folder = Path(folder).expanduser() if folder else default_segmenter_dir()
        card_path, weights = folder / CARD_FILE, folder / WEIGHTS_FILE
        if not card_path.is_file() or not weights.is_file():
            raise WeightsError(
                f"no trained segmenter in {folder} (needs {CARD_FILE} and {WEIGHTS_FILE})",
                f"train one: usbench segmenter train --data REFERENCE --out {folder}, or pass its folder as the segmenter option",
            )
        try:
            card = json.loads(card_path.read_text())
            config = card["config"]
        except (ValueError, KeyError) as exc:
            raise WeightsError(f"{card_path} is not a segmenter card ({type(exc).__name__})", "retrain the segmenter") from None
        digest = sha256_file(weights)
        if card.get("weights_sha256") and digest != card["weights_sha256"]:
            raise WeightsError(
                f"{weights} has sha256 {digest[:16]}… but its card says {card['weights_sha256'][:16]}…",
                "the weights were changed or truncated; retrain the segmenter",
            )
        net = build_unet(config["channels"], config["num_res_units"])
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        net.eval()
        return cls(net=net, card=card, folder=folder)


# --------------------------------------------------------------------------------------------
# training


def _validation_split(train: ImageSet, fraction: float, seed: int) -> np.ndarray:
    """Bool array marking the validation images of the training split: about ``fraction`` of each
    label (at least one image when a label has two or more units), whole units at a time — a
    patient group joined with every duplicate group (``usbench.datasets.splits.units``) — so the
    best epoch is not chosen on copies of training images. A unit filed under two labels goes
    with its majority label."""
    from collections import Counter

    from usbench.datasets.duplicates import duplicate_groups
    from usbench.datasets.splits import units

    rng = np.random.default_rng(seed + 7919)
    records = train.records
    index = {r.id: i for i, r in enumerate(records)}
    label_of = {r.id: r.label for r in records}
    group_of = {r.id: r.group or r.id for r in records}
    val = np.zeros(len(records), dtype=bool)
    all_units = units(train, duplicate_groups(train))
    majority = [min(Counter(label_of[i] for i in u).items(), key=lambda kv: (-kv[1], kv[0]))[0] for u in all_units]
    for label in sorted(set(label_of.values())):
        named = {min(group_of[i] for i in u): u for u, l in zip(all_units, majority) if l == label}
        if len(named) < 2:
            continue
        target = max(1, round(fraction * sum(len(u) for u in named.values())))
        names = sorted(named)
        taken = 0
        for j in rng.permutation(len(names)):
            val[[index[i] for i in named[names[j]]]] = True
            taken += len(named[names[j]])
            if taken >= target:
                break
    return val


PRESENCE_GRID = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02)


def calibrate_min_fraction(logits: np.ndarray, labels: Sequence[str], threshold: float, largest_only: bool,
                           grid: Sequence[float] = PRESENCE_GRID) -> tuple[float, float] | None:
    """The smallest area threshold of ``grid`` with the best balanced presence consistency (the mean
    over labels of: normal → nothing found, benign/malignant → a lesion found) on validation logits,
    and that consistency; None when the validation images lack normal or lesion images."""
    labels = list(labels)
    if "normal" not in labels or all(l == "normal" for l in labels):
        return None
    best: tuple[float, float] | None = None
    for f in grid:
        masks = _masks_from_logits(logits, threshold, f, largest_only)
        found = masks.reshape(len(masks), -1).mean(axis=1) >= f
        score = _presence_summary(found, labels)["balanced"]
        if best is None or score > best[1] + 1e-12:
            best = (float(f), score)
    return best


def _presence_summary(found: np.ndarray, labels: Sequence[str]) -> dict:
    consistent = np.array([f == (l != "normal") for f, l in zip(found, labels)])
    per_label = {l: float(consistent[np.asarray(labels) == l].mean()) for l in sorted(set(labels))}
    return {"rate": float(consistent.mean()), "balanced": float(np.mean(list(per_label.values()))),
            "per_label": per_label}


def evaluate_segmenter(seg: Segmenter, imageset: ImageSet, batch_size: int = 16) -> dict:
    """Dice/HD95 of the segmenter against an image set's own masks: overall, per label, per image."""
    x, y = load_arrays(imageset, seg.image_size)
    pred = _masks_from_logits(_predict_logits(seg.net, x, batch_size), seg.threshold, seg.min_fraction, seg.largest_only)
    dice, hd95 = dice_hd95(pred, y)
    labels = [r.label for r in imageset.records]
    per_label = {
        l: {"dice": float(dice[np.asarray(labels) == l].mean()), "hd95": float(hd95[np.asarray(labels) == l].mean()),
            "n": int((np.asarray(labels) == l).sum())}
        for l in sorted(set(labels))
    }
    return {
        "dice": float(dice.mean()), "hd95": float(hd95.mean()), "n": len(dice), "per_label": per_label,
        "per_image": [{"id": r.id, "label": l, "dice": float(d), "hd95": float(h)}
                      for r, l, d, h in zip(imageset.records, labels, dice, hd95)],
        "presence": _presence_summary(seg.lesion_found(pred), labels),
    }


def train_segmenter(data: ImageSet, out: str | Path | None = None, config: SegmenterConfig | None = None,
                    progress: Callable[[int, int, float], None] | None = None) -> Segmenter:
    """Train on ``data``'s training split, measure the ceiling on its test split, save to ``out``.

    ``progress(epoch, epochs, val_dice)`` is called after each epoch.
    """
    import torch
    from monai.losses import DiceCELoss

    from usbench.datasets.splits import split as split_set

    config = config or SegmenterConfig()
    out = Path(out).expanduser() if out else default_segmenter_dir()
    if out.is_dir() and any(out.iterdir()) and not (out / CARD_FILE).is_file():
        raise OutputError(f"{out} holds files but no segmenter card", "choose an empty or new --out folder")
    if not any(r.mask_file is not None for r in data.records):
        raise InputError(
            f"{data.name} has no lesion masks: a segmenter cannot be trained and mask adherence is impossible",
            "give a reference set with masks (BUSI, BUS-BRA, UDIAT, the phantom set)",
        )
    usable = [r for r in data.records if has_lesion_truth(r)]
    dropped = len(data) - len(usable)
    if dropped:
        data = data.subset(usable)  # a benign/malignant image without a mask says nothing about where its lesion is
    sp = split_set(data, scheme=config.split, test_fraction=config.test_fraction, seed=config.seed)
    val_mask = _validation_split(sp.train, config.val_fraction, config.seed)
    if val_mask.sum() < 1 or (~val_mask).sum() < 2:
        raise NotEnoughImagesError(f"{data.name} is too small to hold out a validation part ({len(sp.train)} training images)",
                                   "use a larger reference set")
    x, y = load_arrays(sp.train, config.image_size)
    x_tr, y_tr = torch.from_numpy(x[~val_mask]), torch.from_numpy(y[~val_mask][:, None].astype(np.float32))
    x_val, y_val = x[val_mask], y[val_mask]

    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    net = build_unet(config.channels, config.num_res_units)
    opt = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    loss_fn = DiceCELoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)
    best = (-1.0, 0, None)
    history = []
    for epoch in range(config.epochs):
        net.train()
        order = torch.randperm(len(x_tr), generator=gen)
        total = 0.0
        for i in range(0, len(order), config.batch_size):
            idx = order[i:i + config.batch_size]
            xb, yb = x_tr[idx], y_tr[idx]
            if config.augment:
                xb, yb = augment(xb, yb, gen)
            opt.zero_grad()
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        val_pred = _masks_from_logits(_predict_logits(net, x_val, config.batch_size), config.threshold,
                                      config.min_lesion_fraction, config.largest_only)
        val_dice = float(dice_hd95(val_pred, y_val)[0].mean())
        history.append({"epoch": epoch + 1, "loss": total / len(x_tr), "val_dice": val_dice})
        if val_dice > best[0]:
            best = (val_dice, epoch + 1, {k: v.detach().clone() for k, v in net.state_dict().items()})
        if progress:
            progress(epoch + 1, config.epochs, val_dice)
    net.load_state_dict(best[2])
    net.eval()
    calibration = None
    if config.calibrate_presence:
        val_labels = [r for r, v in zip(sp.train.records, val_mask) if v]
        calibration = calibrate_min_fraction(_predict_logits(net, x_val, config.batch_size),
                                             [r.label for r in val_labels], config.threshold, config.largest_only)
        if calibration is not None:
            config = replace(config, min_lesion_fraction=calibration[0])  # the caller's config stays as given

    card = {
        "card_version": CARD_VERSION,
        "kind": "usbench lesion segmenter (MONAI 2-D U-Net)",
        "data": {"name": data.name, "content_hash": data.content_hash(), "n_images": len(data),
                 "counts": data.counts(), "left_out_without_mask": dropped},
        "split": {**sp.describe(config.test_fraction), "n_train": int((~val_mask).sum()), "n_val": int(val_mask.sum()),
                  "validation": "whole patient and duplicate groups of the training split"},
        "labels": data.labels,
        "image_size": config.image_size,
        "epochs": config.epochs,
        "best_epoch": best[1],
        "validation_dice": best[0],
        "presence_calibration": (None if calibration is None else
                                 {"min_lesion_fraction": calibration[0], "validation_balanced_consistency": calibration[1],
                                  "grid": list(PRESENCE_GRID)}),
        "history": history,
        "config": asdict(config),
        "versions": versions(("torch", "monai", "numpy")),
    }
    seg = Segmenter(net=net, card=card)
    card["ceiling"] = evaluate_segmenter(seg, sp.test, config.batch_size)
    ensure_writable_dir(out)
    import io

    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    atomic_write_bytes(out / WEIGHTS_FILE, buf.getvalue())
    card["weights_sha256"] = sha256_file(out / WEIGHTS_FILE)
    atomic_write_text(out / CARD_FILE, json.dumps(card, indent=2, default=_json_default) + "\n")
    seg.folder = out
    return seg


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, tuple):
        return list(o)
    return str(o)


__all__ = ["Segmenter", "SegmenterConfig", "default_segmenter_dir", "evaluate_segmenter", "train_segmenter"]
