"""Which masks a mask-conditioned generator may be conditioned on, and how many samples per mask.

A ControlNet trained by ``usbench finetune controlnet-busi`` records its split in its model card
(``split.test_ids``, ``split.train_ids``). Conditioning it on one of its own training masks
measures memory, not generation, so by default only the reference records that were *not* in
its training set condition it (for the training data itself: exactly the held-out split). A
training mask is used only when the user says so (``allow_training_masks``), and the choice is
recorded beside the images (:data:`CONDITIONING_FILE`).

Two ways to plan the requests:

- ``n`` requests following the label mix of the reference, cycling through the held-out masks;
- ``per_mask = K``: exactly K requests per held-out mask, the seed paper's protocol (8 per mask).

A generator without a card (the phantom, a ControlNet from elsewhere) is conditioned on the
test split the caller gives (``fallback``), as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from usbench.common import SEED_STRIDE
from usbench.errors import ConfigError, InputError
from usbench.generators.base import GenerationRequest
from usbench.imageset import ImageSet, atomic_write_text

CONDITIONING_FILE = "conditioning.json"


@dataclass
class ConditioningPlan:
    """The requests of a mask-conditioned run and where each mask came from."""

    requests: list[GenerationRequest]
    masks_from: dict[str, str]  # request id -> reference record id of its mask
    scheme: str  # "model card split", "caller's test split", or "all reference masks"
    n_training_masks: int  # requests conditioned on a mask the generator was trained on
    per_mask: int = 0
    notes: list[str] = field(default_factory=list)
    mask_fit: str = "squash"  # how non-square masks became squares (generators.conditioning.fit_mask)

    def summary(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "per_mask": self.per_mask, "mask_fit": self.mask_fit, "n_requests": len(self.requests),
                "n_masks": len(set(self.masks_from.values())), "n_training_masks": self.n_training_masks,
                "notes": self.notes}

    def write(self, out: Path) -> Path:
        """``conditioning.json`` beside the generated images: the summary and each request's mask source."""
        path = Path(out) / CONDITIONING_FILE
        atomic_write_text(path, json.dumps({**self.summary(), "masks_from": self.masks_from}, indent=2) + "\n")
        return path


def training_ids(generator: Any, reference: ImageSet) -> set[str] | None:
    """Ids of ``reference`` records the generator was trained on, from its model card; None when it has no card.

    Cards record ``data.train_ids``; older cards record only the test ids, so every reference
    record outside them counts as training when the reference is the card's training data (same
    content), and none otherwise. Ids, not pixels, decide: another dataset in BUSI's layout whose
    ids repeat the training ids is treated as training data (the safe side).
    """
    card = getattr(generator, "card", None)
    if not card or "data" not in card:
        return None
    data = card.get("data") or {}
    if "train_ids" in data:
        return set(data["train_ids"])
    the_split = card.get("split")
    if data.get("content_hash") != reference.content_hash():
        return set()
    if the_split is None:  # trained on everything it was given
        return set(reference.ids)
    return set(reference.ids) - set(the_split.get("test_ids") or [])


def conditioning_set(generator: Any, reference: ImageSet, fallback: ImageSet | None,
                     allow_training_masks: bool = False) -> tuple[ImageSet, set[str], str, list[str]]:
    """(records whose masks may condition, the training ids among the reference, scheme, notes)."""
    notes: list[str] = []
    train = training_ids(generator, reference)
    if train is None:
        pool = fallback if fallback is not None else reference
        if getattr(generator, "needs_weights", True):  # a trained model without a card (the phantom is not trained)
            notes.append(f"{generator.name} has no model card recording its training split: conditioning on the test split given")
        return pool, set(), "caller's test split", notes
    if allow_training_masks:
        n_train = sum(r.id in train for r in reference.records)
        if n_train:
            notes.append(f"{n_train} of {len(reference)} reference masks are {generator.name} training masks (allowed)")
        return reference, train, "all reference masks", notes
    held = reference.subset([r for r in reference.records if r.id not in train], name=f"{reference.name}-heldout")
    if len(held) == 0:
        raise InputError(
            f"every mask of {reference.name} is a training mask of {generator.name} (its model card's split)",
            "condition on its held-out split (the same dataset it was trained on, with --split kept out of training), "
            "another dataset, or pass --allow-training-masks to measure memorisation on purpose",
        )
    return held, train, "model card split", notes


def plan_requests(generator: Any, reference: ImageSet, n: int, seed: int, size: int, label_mix: Callable[..., list],
                  fallback: ImageSet | None = None, per_mask: int = 0, allow_training_masks: bool = False,
                  log: Callable[[str], None] = lambda s: None) -> ConditioningPlan:
    """The requests of a mask-conditioned generator: held-out masks only (unless allowed), ``n`` of
    them in the reference's label mix (``label_mix(reference, n, seed, size, pool)``: the planner's
    ``make_requests``), or exactly ``per_mask`` per held-out mask."""
    if per_mask < 0:
        raise ConfigError(f"--per-mask must be at least 1, got {per_mask}", "e.g. --per-mask 8 (the paper's protocol)")
    pool, train, scheme, notes = conditioning_set(generator, reference, fallback, allow_training_masks)
    for note in notes:
        log(note)
    fit = getattr(getattr(generator, "config", None), "mask_fit", "squash")
    if per_mask:
        requests, sources = _per_mask_requests(pool, per_mask, seed, size, fit)
    else:
        requests, sources = _label_mix_requests(label_mix(reference, n, seed, size, pool), pool, size, fit)
    n_train = sum(sources[r.id] in train for r in requests)
    return ConditioningPlan(requests, sources, scheme, n_train, per_mask, notes, fit)


def _per_mask_requests(pool: ImageSet, k: int, seed: int, size: int, fit: str) -> tuple[list[GenerationRequest], dict[str, str]]:
    requests, sources = [], {}
    by_label: dict[str, int] = {}
    for rec in pool.records:
        mask = _mask_of(pool, rec, size, fit)
        for j in range(k):
            index = by_label.get(rec.label, 0)
            by_label[rec.label] = index + 1
            pos = len(requests)
            req = GenerationRequest(id=f"{rec.label or 'image'}-{index:05d}", label=rec.label,
                                    seed=seed * SEED_STRIDE + pos, size=size, mask=mask, index=index, position=pos)
            requests.append(req)
            sources[req.id] = rec.id
    return requests, sources


def _label_mix_requests(requests: list[GenerationRequest], pool: ImageSet, size: int, fit: str):
    """The label-mix requests (masks cycling per label) with each mask's source and its fitted mask."""
    from dataclasses import replace

    sources, fitted = {}, []
    for r in requests:
        recs = [x for x in pool.records if x.label == r.label]
        rec = recs[r.index % len(recs)]
        sources[r.id] = rec.id
        fitted.append(replace(r, mask=_mask_of(pool, rec, size, fit)))
    return fitted, sources


def fit_mask(mask, size: int, fit: str = "crop"):
    """A mask of any shape as a ``size`` square: ``crop`` (centre square, as the training crops keep
    the aspect ratio), ``letterbox`` (padded with background) or ``squash`` (resized, distorting)."""
    import numpy as np

    from usbench.imageset import resize_mask

    h, w = mask.shape
    if fit == "crop" and h != w:
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        mask = mask[top:top + s, left:left + s]
    elif fit == "letterbox" and h != w:
        s = max(h, w)
        padded = np.zeros((s, s), bool)
        top, left = (s - h) // 2, (s - w) // 2
        padded[top:top + h, left:left + w] = mask
        mask = padded
    return resize_mask(mask, size)


def _mask_of(pool: ImageSet, rec, size: int, fit: str = "crop"):
    mask = pool.load_mask(rec)
    mask = None if mask is None else fit_mask(mask, size, fit)
    if rec.label == "normal" or (mask is not None and not mask.any()):
        return None  # normal images: no lesion, an empty conditioning image (as make_requests)
    return mask


def read_conditioning(folder: Path) -> dict[str, Any] | None:
    """The ``conditioning.json`` of a generated set, or None."""
    path = Path(folder) / CONDITIONING_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def check_generated(folder: Path, allow_training_masks: bool = False) -> dict[str, Any] | None:
    """Refuse to evaluate a generated set conditioned on its generator's training masks (unless allowed)."""
    info = read_conditioning(folder)
    if info and info.get("n_training_masks") and not allow_training_masks:
        raise InputError(
            f"{folder}: {info['n_training_masks']} image(s) were conditioned on the generator's training masks",
            "generate again from held-out masks (the default), or pass --allow-training-masks to score it anyway",
        )
    return info


__all__ = ["CONDITIONING_FILE", "ConditioningPlan", "check_generated", "conditioning_set", "plan_requests",
           "read_conditioning", "training_ids"]
