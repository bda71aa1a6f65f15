"""Train/test splits that keep duplicates and patients on one side; BUSI's paper split as published.

BUSI contains exact and near-duplicate images, some filed under two labels (Pawłowska et al.,
Data in Brief 48:109247, 2023). A duplicate on both sides of a split reads as memorization to a
memorization metric and as generalization to a classifier, so:

- ``seeded`` (the default): per label, whole *units* are shuffled with the seed and moved to the
  test set until it holds ``test_fraction`` of the label. A unit is a connected component of
  "same patient group" (``ImageRecord.group``) and "duplicate of" (:func:`duplicate_groups`), so
  no near-duplicate group and no patient straddles the split. A unit filed under two labels
  counts towards its majority label (ties: the first label in ``ImageSet.labels`` order) and takes
  its other members along.
- ``paper``: the seed paper's published hold-out, exactly as published; its leaks are reported.
- ``paper-dedup``: the paper's test set, and its training set without the members of any unit that
  also has a member in the test set (listed in ``Split.removed``). Leak-free, the test set unchanged.

Every split reports its ``leaks``: the units (duplicate groups or patient groups) on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from usbench.datasets.duplicates import DuplicateGroup, duplicate_groups
from usbench.datasets.readers import busi_number
from usbench.errors import ConfigError, NotEnoughImagesError
from usbench.imageset import ImageSet

# The published ControlNet hold-out of the seed paper: these BUSI numbers are the test set.
PAPER_TEST_RANGES = {"benign": (403, 437), "malignant": (186, 210), "normal": (114, 133)}
SCHEMES = ("seeded", "paper", "paper-dedup")
LEAK_FREE_SCHEMES = ("seeded", "paper-dedup")


@dataclass
class Split:
    train: ImageSet
    test: ImageSet
    scheme: str
    seed: int
    leaks: list[list[str]] = field(default_factory=list)  # units (duplicates, patients) spanning train and test
    removed: list[str] = field(default_factory=list)  # training images dropped because they leak (paper-dedup)
    checked: bool = True  # False: the paper split taken with check_leaks=False, leaks not looked for

    @property
    def leak_free(self) -> bool:
        return self.checked and not self.leaks

    def describe(self, test_fraction: float | None = None) -> dict[str, Any]:
        """What a result records about the split it used."""
        out: dict[str, Any] = {"scheme": self.scheme, "seed": self.seed, "n_train": len(self.train), "n_test": len(self.test),
                               "leak_free": self.leak_free, "leaks": self.leaks, "removed": self.removed}
        if test_fraction is not None and self.scheme == "seeded":
            out["test_fraction"] = test_fraction
        return out


def split(imageset: ImageSet, scheme: str = "seeded", test_fraction: float = 0.2, seed: int = 0,
          check_leaks: bool = True, groups: list[DuplicateGroup] | None = None) -> Split:
    """Split ``imageset`` into train and test (see the module docstring for the schemes).

    ``groups``: the set's duplicate groups when already computed (``data inspect`` splits twice).
    ``check_leaks=False`` skips looking for duplicates in the ``paper`` split (the published one,
    used as is); ``seeded`` and ``paper-dedup`` always need them.
    """
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown split scheme {scheme!r}", f"known schemes: {', '.join(SCHEMES)}")
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test fraction must be between 0 and 1, got {test_fraction}", "e.g. 0.2")
    need_groups = check_leaks or scheme != "paper"
    if need_groups and groups is None:
        groups = duplicate_groups(imageset)
    unit_list = units(imageset, groups or []) if need_groups else []
    removed: list[str] = []
    if scheme in ("paper", "paper-dedup"):
        test_ids = {r.id for r in imageset.records if _in_paper_test(r.label, r.id)}
        if not test_ids:
            raise ConfigError(f"the {scheme} split needs BUSI ids such as 'benign (403)'", "use scheme 'seeded' for this dataset")
        if scheme == "paper-dedup":
            removed = sorted(i for u in _spanning(unit_list, test_ids) for i in u if i not in test_ids)
    else:
        test_ids = _seeded_test_ids(imageset, unit_list, test_fraction, seed)
    dropped = set(removed)
    train = imageset.subset([r for r in imageset.records if r.id not in test_ids and r.id not in dropped],
                            name=f"{imageset.name}-{scheme}-train")
    test = imageset.subset([r for r in imageset.records if r.id in test_ids], name=f"{imageset.name}-{scheme}-test")
    kept = {r.id for r in imageset.records} - dropped
    leaks = [sorted(set(u) & kept) for u in _spanning(unit_list, test_ids) if set(u) & kept - test_ids]
    return Split(train=train, test=test, scheme=scheme, seed=seed, leaks=leaks, removed=removed, checked=need_groups)


def units(imageset: ImageSet, groups: list[DuplicateGroup]) -> list[list[str]]:
    """Connected components of "same patient group" and "duplicate of", as lists of ids (sorted)."""
    ids = [r.id for r in imageset.records]
    index = {i: k for k, i in enumerate(ids)}
    parent = list(range(len(ids)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def link(members: list[str]) -> None:
        members = [m for m in members if m in index]
        for m in members[1:]:
            parent[find(index[m])] = find(index[members[0]])

    by_patient: dict[str, list[str]] = {}
    for r in imageset.records:
        by_patient.setdefault(r.group or r.id, []).append(r.id)
    for members in by_patient.values():
        link(members)
    for g in groups:
        link(g.ids)
    comps: dict[int, list[str]] = {}
    for k, i in enumerate(ids):
        comps.setdefault(find(k), []).append(i)
    return [sorted(c) for c in comps.values()]


def _spanning(units: list[list[str]], test_ids: set[str]) -> list[list[str]]:
    """The units with members on both sides of ``test_ids``."""
    return [u for u in units if len(u) > 1 and set(u) & test_ids and set(u) - test_ids]


def _in_paper_test(label: str, record_id: str) -> bool:
    num = busi_number(record_id)
    lo_hi = PAPER_TEST_RANGES.get(label)
    return num is not None and lo_hi is not None and lo_hi[0] <= num <= lo_hi[1]


def _seeded_test_ids(imageset: ImageSet, units: list[list[str]], test_fraction: float, seed: int) -> set[str]:
    rng = np.random.default_rng(seed)
    label_of = {r.id: r.label for r in imageset.records}
    group_of = {r.id: r.group or r.id for r in imageset.records}
    labels = imageset.labels or [""]
    rank = {l: k for k, l in enumerate(labels)}

    def primary(unit: list[str]) -> str:
        counts: dict[str, int] = {}
        for i in unit:
            counts[label_of[i]] = counts.get(label_of[i], 0) + 1
        return min(counts, key=lambda l: (-counts[l], rank.get(l, len(rank))))

    # a unit is named by its smallest patient-group key: without duplicates, units are the patient
    # groups and the shuffle is the same as a split by patient alone
    named = {min(group_of[i] for i in u): u for u in units}
    test: set[str] = set()
    for label in labels:
        n_label = sum(1 for r in imageset.records if r.label == label)
        touching = [n for n, u in named.items() if any(label_of[i] == label for i in u)]
        if len(touching) < 2:
            raise NotEnoughImagesError(
                f"label {label or '(none)'} has {len(touching)} patient/duplicate group(s); a split needs at least 2",
                "add images of that label or leave it out",
            )
        names = sorted(n for n in touching if primary(named[n]) == label)
        order = rng.permutation(len(names))
        target = max(1, round(test_fraction * n_label))
        taken = sum(1 for i in test if label_of[i] == label)  # brought along by units of another label
        for k in order:
            if taken >= target:
                break
            size = sum(1 for i in named[names[k]] if label_of[i] == label)
            if taken and taken + size > target * 1.5:
                continue  # a large unit would overshoot: try a smaller one
            test.update(named[names[k]])
            taken += size
    return test
