"""Exact and near-duplicate images within a set.

Exact: identical decoded pixels (so the same image saved as RGB and as L counts). Near: the
Pearson correlation of 32×32 thumbnails is at least ``threshold`` (catches re-saved, slightly
re-cropped or re-scaled copies, which BUSI has). Groups are the connected components.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from usbench.imageset import ImageSet, read_gray, resize_gray

NEAR_THRESHOLD = 0.97


@dataclass
class DuplicateGroup:
    ids: list[str]
    labels: list[str]
    exact: bool  # every member has identical pixels

    @property
    def cross_label(self) -> bool:
        return len(set(self.labels)) > 1


def thumbnails(imageset: ImageSet, size: int = 32) -> tuple[np.ndarray, list[str]]:
    """Zero-mean, unit-norm thumbnails (N, size*size) and pixel hashes of every image."""
    thumbs, hashes = [], []
    for rec in imageset.records:
        img = read_gray(rec.file)
        hashes.append(hashlib.sha256(img.tobytes() + str(img.shape).encode()).hexdigest())
        t = resize_gray(img, size).astype(np.float64).ravel()
        t -= t.mean()
        norm = np.linalg.norm(t)
        thumbs.append(t / norm if norm > 0 else t)
    return np.asarray(thumbs), hashes


def duplicate_groups(imageset: ImageSet, threshold: float = NEAR_THRESHOLD) -> list[DuplicateGroup]:
    n = len(imageset)
    if n < 2:
        return []
    thumbs, hashes = thumbnails(imageset)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        parent[find(i)] = find(j)

    first: dict[str, int] = {}
    for i, h in enumerate(hashes):
        if h in first:
            union(i, first[h])
        else:
            first[h] = i
    corr = thumbs @ thumbs.T
    ii, jj = np.nonzero(np.triu(corr >= threshold, k=1))
    for i, j in zip(ii.tolist(), jj.tolist()):
        union(i, j)
    comps: dict[int, list[int]] = {}
    for i in range(n):
        comps.setdefault(find(i), []).append(i)
    groups = []
    for members in comps.values():
        if len(members) < 2:
            continue
        recs = [imageset.records[i] for i in members]
        groups.append(DuplicateGroup(
            ids=[r.id for r in recs], labels=[r.label for r in recs],
            exact=len({hashes[i] for i in members}) == 1,
        ))
    return sorted(groups, key=lambda g: g.ids)
