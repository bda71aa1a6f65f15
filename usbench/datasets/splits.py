"""Train/test splits: seeded, stratified by label, grouped by patient; BUSI's paper split.

A split also reports its leaks: exact or near-duplicate images on both sides (BUSI contains
duplicated images, some filed under two labels), so a leak is seen where it happens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from usbench.datasets.duplicates import duplicate_groups
from usbench.datasets.readers import busi_number
from usbench.errors import ConfigError, NotEnoughImagesError
from usbench.imageset import ImageSet

# The published ControlNet hold-out of the seed paper: these BUSI numbers are the test set.
PAPER_TEST_RANGES = {"benign": (403, 437), "malignant": (186, 210), "normal": (114, 133)}
SCHEMES = ("seeded", "paper")


@dataclass
class Split:
    train: ImageSet
    test: ImageSet
    scheme: str
    seed: int
    leaks: list[list[str]] = field(default_factory=list)  # duplicate groups spanning train and test


def split(imageset: ImageSet, scheme: str = "seeded", test_fraction: float = 0.2, seed: int = 0,
          check_leaks: bool = True) -> Split:
    """Split ``imageset`` into train and test.

    ``seeded``: per label, whole patient groups (``ImageRecord.group``; each image its own group
    where the dataset gives none) are shuffled with ``seed`` and taken into the test set until it
    holds ``test_fraction`` of the label. ``paper``: BUSI's published hold-out.
    """
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown split scheme {scheme!r}", f"known schemes: {', '.join(SCHEMES)}")
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test fraction must be between 0 and 1, got {test_fraction}", "e.g. 0.2")
    if scheme == "paper":
        test_ids = {r.id for r in imageset.records if _in_paper_test(r.label, r.id)}
        if not test_ids:
            raise ConfigError("the paper split needs BUSI ids such as 'benign (403)'", "use scheme 'seeded' for this dataset")
    else:
        test_ids = _seeded_test_ids(imageset, test_fraction, seed)
    train = imageset.subset([r for r in imageset.records if r.id not in test_ids], name=f"{imageset.name}-train")
    test = imageset.subset([r for r in imageset.records if r.id in test_ids], name=f"{imageset.name}-test")
    leaks = []
    if check_leaks:
        for group in duplicate_groups(imageset):
            ids = set(group.ids)
            if ids & test_ids and ids - test_ids:
                leaks.append(sorted(ids))
    return Split(train=train, test=test, scheme=scheme, seed=seed, leaks=leaks)


def _in_paper_test(label: str, record_id: str) -> bool:
    num = busi_number(record_id)
    lo_hi = PAPER_TEST_RANGES.get(label)
    return num is not None and lo_hi is not None and lo_hi[0] <= num <= lo_hi[1]


def _seeded_test_ids(imageset: ImageSet, test_fraction: float, seed: int) -> set[str]:
    rng = np.random.default_rng(seed)
    test: set[str] = set()
    for label in imageset.labels or [""]:
        recs = [r for r in imageset.records if r.label == label]
        groups: dict[str, list[str]] = {}
        for r in recs:
            groups.setdefault(r.group or r.id, []).append(r.id)
        if len(groups) < 2:
            raise NotEnoughImagesError(
                f"label {label or '(none)'} has {len(groups)} patient group(s); a split needs at least 2",
                "add images of that label or leave it out",
            )
        names = sorted(groups)
        order = rng.permutation(len(names))
        target = max(1, round(test_fraction * len(recs)))
        taken = 0
        for i in order:
            if taken and taken + len(groups[names[i]]) > target * 1.5:
                continue  # a large patient group would overshoot: try a smaller one
            test.update(groups[names[i]])
            taken += len(groups[names[i]])
            if taken >= target:
                break
    return test
