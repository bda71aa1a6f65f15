"""Exact and near-duplicate images within a set.

Exact: identical decoded pixels (so the same image saved as RGB and as L counts). Near: the
Pearson correlation of 32×32 thumbnails is at least ``threshold`` (catches re-saved, slightly
re-cropped or re-scaled copies, which BUSI has). Groups are the connected components.

Decoding the images is the whole cost (≈ 4 ms per BUSI image; the 780×780 correlation matrix
takes milliseconds), so each file's pixel hash and thumbnail are cached: in memory for the
process, keyed by path, size and modification time, and on disk in ``$USBENCH_CACHE/duplicates.sqlite``,
keyed by the file's sha256, so ``data inspect``, ``segmenter train``, ``utility`` and ``run`` on the
same dataset decode it once between them.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from usbench.imageset import ImageSet, read_gray, resize_gray

NEAR_THRESHOLD = 0.97
THUMB_SIZE = 32
CACHE_FILE = "duplicates.sqlite"

_memo: dict[tuple[str, int, int, int], tuple[str, np.ndarray]] = {}


@dataclass
class DuplicateGroup:
    ids: list[str]
    labels: list[str]
    exact: bool  # every member has identical pixels

    @property
    def cross_label(self) -> bool:
        return len(set(self.labels)) > 1


def _thumbnail(path: Path, size: int) -> tuple[str, np.ndarray]:
    """(sha256 of the decoded pixels, zero-mean unit-norm thumbnail) of one image."""
    img = read_gray(path)
    pixel_hash = hashlib.sha256(img.tobytes() + str(img.shape).encode()).hexdigest()
    t = resize_gray(img, size).astype(np.float64).ravel()
    t -= t.mean()
    norm = np.linalg.norm(t)
    return pixel_hash, t / norm if norm > 0 else t


class _DiskCache:
    """file sha256 → (pixel hash, thumbnail) in SQLite; any failure just means no caching."""

    def __init__(self, size: int):
        from usbench.weights import usbench_cache

        self.size = size
        self.db: sqlite3.Connection | None = None
        try:
            path = usbench_cache() / CACHE_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30)
            self.db.execute("CREATE TABLE IF NOT EXISTS thumbs (file_sha TEXT, size INTEGER, pixel_sha TEXT, "
                            "thumb BLOB, PRIMARY KEY (file_sha, size))")
        except (OSError, sqlite3.Error):  # read-only home, full disk: compute, do not cache
            self.db = None

    def get(self, file_sha: str) -> tuple[str, np.ndarray] | None:
        if self.db is None:
            return None
        try:
            row = self.db.execute("SELECT pixel_sha, thumb FROM thumbs WHERE file_sha = ? AND size = ?",
                                  (file_sha, self.size)).fetchone()
        except sqlite3.Error:
            return None
        if row is None or len(row[1]) != 8 * self.size * self.size:
            return None
        return row[0], np.frombuffer(row[1], dtype=np.float64)

    def put(self, rows: list[tuple[str, str, np.ndarray]]) -> None:
        if self.db is None or not rows:
            return
        try:
            with self.db:
                self.db.executemany("INSERT OR REPLACE INTO thumbs VALUES (?, ?, ?, ?)",
                                    [(f, self.size, p, np.asarray(t, np.float64).tobytes()) for f, p, t in rows])
        except sqlite3.Error:
            pass

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


def thumbnails(imageset: ImageSet, size: int = THUMB_SIZE, disk_cache: bool = True) -> tuple[np.ndarray, list[str]]:
    """Zero-mean, unit-norm thumbnails (N, size*size) and pixel hashes of every image.

    ``disk_cache=False`` still uses (and fills) the in-process memo, but neither reads nor writes
    ``$USBENCH_CACHE``."""
    from usbench.imageset import sha256_file

    disk = _DiskCache(size) if disk_cache else None
    thumbs, hashes, new_rows = [], [], []
    try:
        for rec in imageset.records:
            st = rec.file.stat()
            key = (str(rec.file), st.st_size, st.st_mtime_ns, size)
            hit = _memo.get(key)
            if hit is None:
                file_sha = sha256_file(rec.file) if disk is not None else ""
                hit = disk.get(file_sha) if disk is not None else None
                if hit is None:
                    hit = _thumbnail(rec.file, size)
                    if disk is not None:
                        new_rows.append((file_sha, *hit))
                _memo[key] = hit
            hashes.append(hit[0])
            thumbs.append(hit[1])
        if disk is not None:
            disk.put(new_rows)
    finally:
        if disk is not None:
            disk.close()
    return np.asarray(thumbs, dtype=np.float64).reshape(len(thumbs), size * size), hashes


def duplicate_groups(imageset: ImageSet, threshold: float = NEAR_THRESHOLD, disk_cache: bool = True) -> list[DuplicateGroup]:
    """Groups (connected components) of exact and near-duplicate images, sorted by their ids."""
    n = len(imageset)
    if n < 2:
        return []
    thumbs, hashes = thumbnails(imageset, disk_cache=disk_cache)
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
