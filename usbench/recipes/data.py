"""Training data of the recipes: the train split, the authors' augmentation, deterministic batches.

Batches are a pure function of (seed, step, process): the image order is a seeded permutation per
epoch, and the crop and flip of each sample come from a generator seeded by its position. So a run
resumed from a checkpoint sees exactly the batches the uninterrupted run would have seen, and on
several processes each one takes its own part of the global batch.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

from usbench.datasets.splits import Split, split
from usbench.errors import NotEnoughImagesError
from usbench.generators.checkpoints import prompt_for
from usbench.imageset import ImageSet


def training_split(imageset: ImageSet, scheme: str = "auto", test_fraction: float = 0.2, seed: int = 0,
                   log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> Split | None:
    """The paper's split for BUSI, a seeded split otherwise; ``none`` trains on everything.

    ``auto`` takes the paper's hold-out only when it holds images of every label of the set (BUSI
    ids such as ``benign (403)``); otherwise it says so and takes the seeded split."""
    if scheme == "none":
        return None
    if scheme == "auto":
        if imageset.records and all(r.source == "busi" for r in imageset.records):
            paper = split(imageset, scheme="paper", check_leaks=False) if _has_paper_ids(imageset) else None
            if paper is not None and set(paper.test.labels) >= set(imageset.labels):
                return paper
        if any(r.source == "busi" for r in imageset.records):
            log(f"notice: --split auto: {imageset.name} lacks BUSI's held-out ids (benign 403-437, malignant 186-210, "
                f"normal 114-133) for every label; using a seeded {round(test_fraction * 100)}% split (seed {seed})")
        scheme = "seeded"
    return split(imageset, scheme=scheme, test_fraction=test_fraction, seed=seed, check_leaks=False)


def _has_paper_ids(imageset: ImageSet) -> bool:
    from usbench.datasets.splits import PAPER_TEST_RANGES
    from usbench.datasets.readers import busi_number

    for r in imageset.records:
        num, lo_hi = busi_number(r.id), PAPER_TEST_RANGES.get(r.label)
        if num is not None and lo_hi and lo_hi[0] <= num <= lo_hi[1]:
            return True
    return False


@dataclass
class Sample:
    pixels: np.ndarray  # float32 (3, res, res) in [-1, 1]
    conditioning: np.ndarray | None  # float32 (3, res, res) in [0, 1]: the mask, for the ControlNet
    prompt: str
    position: int = 0  # global position in the stream of samples (seeds its noise)


class TrainingData:
    """Images (and masks) of a train set, augmented as the authors did: resize the short side to
    ``resolution``, random crop ``resolution``, random horizontal flip."""

    def __init__(self, imageset: ImageSet, resolution: int, with_masks: bool = False, seed: int = 0):
        if len(imageset) == 0:
            raise NotEnoughImagesError(f"{imageset.name} has no training images", "check --data and the split")
        unlabelled = [r.id for r in imageset.records if not r.label]
        if unlabelled:
            raise NotEnoughImagesError(
                f"{len(unlabelled)} training image(s) have no label, e.g. {unlabelled[0]}",
                "the prompt needs the label; use a labelled dataset (BUSI layout or a manifest with labels)",
            )
        self.imageset = imageset
        self.resolution = resolution
        self.with_masks = with_masks
        self.seed = seed
        self._cache: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}

    def __len__(self) -> int:
        return len(self.imageset)

    @property
    def labels(self) -> list[str]:
        return self.imageset.labels

    def index_at(self, position: int) -> int:
        n = len(self)
        epoch, within = divmod(position, n)
        return int(np.random.default_rng([self.seed, epoch]).permutation(n)[within])

    def batch(self, step: int, batch_size: int, rank: int = 0, world: int = 1) -> list[Sample]:
        """Process ``rank``'s part of global batch ``step`` (1-based)."""
        out = []
        for j in range(batch_size):
            position = ((step - 1) * world + rank) * batch_size + j
            sample = self.sample(self.index_at(position), np.random.default_rng([self.seed, 1, position]))
            sample.position = position
            out.append(sample)
        return out

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        if i not in self._cache:
            rec = self.imageset.records[i]
            img = self.imageset.load_image(rec)
            mask = None
            if self.with_masks:
                mask = self.imageset.load_mask(rec)
                if mask is None:  # normal images: an empty mask, as in BUSI
                    mask = np.zeros(img.shape, bool)
            self._cache[i] = (img, mask)
        return self._cache[i]

    def sample(self, i: int, rng: np.random.Generator) -> Sample:
        img, mask = self._load(i)
        res = self.resolution
        h, w = img.shape
        scale = res / min(h, w)
        nh, nw = max(res, round(h * scale)), max(res, round(w * scale))
        top, left = int(rng.integers(0, nh - res + 1)), int(rng.integers(0, nw - res + 1))
        flip = bool(rng.random() < 0.5)
        pim = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))[top:top + res, left:left + res]
        if flip:
            pim = pim[:, ::-1]
        pixels = np.repeat((pim.astype(np.float32) / 127.5 - 1.0)[None], 3, axis=0)
        cond = None
        if mask is not None:
            pm = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((nw, nh), Image.NEAREST))
            pm = pm[top:top + res, left:left + res]
            if flip:
                pm = pm[:, ::-1]
            cond = np.repeat((pm > 127).astype(np.float32)[None], 3, axis=0)
        return Sample(np.ascontiguousarray(pixels), None if cond is None else np.ascontiguousarray(cond),
                      prompt_for(self.imageset.records[i].label))
