"""Features computed once per (image-set content, extractor, preprocessing) and cached on disk.

An extractor (registered in :data:`usbench.metrics.EXTRACTORS`) is a class with
``from_config(options: dict)``, ``name``, ``fingerprint() -> str`` (weights sha256 +
preprocessing) and ``extract(images: Iterable[np.ndarray], n: int) -> np.ndarray`` returning an
(n, d) float64 matrix for 2-D uint8 images. Images reach it at the store's ``image_size``: N
(resized to N×N, bicubic, see :func:`usbench.imageset.resize_gray`) or (h, w), the native size
of sets whose images all have it (nothing resized; :func:`usbench.evaluation.evaluation_size`);
any further resize (e.g. Inception's 299 px) is the extractor's own, documented protocol.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from usbench.common import track
from usbench.errors import InputError
from usbench.imageset import ImageSet, atomic_write_bytes, size_token


class FeatureStore:
    """Computes and caches features. ``store(imageset, "inception")`` → (N, d) float64 aligned with records.

    The disk cache lives in ``cache_dir/<sha256>.npz`` keyed by the set's content hash, the
    extractor's fingerprint and the image size (N for N×N pixels, whether resized or native, since
    those are the same pixels; ``WxH`` for a native non-square size). A subset of a set already computed (a label, a
    bootstrap sample) is served from memory by record file path, without extracting again.
    """

    def __init__(self, cache_dir: Path | None, image_size: int | tuple[int, int] = 256, options: dict[str, dict[str, Any]] | None = None,
                 progress: bool = False):
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.image_size = image_size
        self.options = options or {}
        self.progress = progress
        self._extractors: dict[str, Any] = {}
        self._rows: dict[tuple[str, Path], np.ndarray] = {}
        self._parents: list[tuple[ImageSet, frozenset[Path]]] = []
        self.hits = 0
        self.misses = 0

    def register(self, *sets: ImageSet | None) -> None:
        """Declare whole sets whose subsets (labels, bootstrap samples) will be asked for: a subset
        is then served from its parent's features, extracted (or loaded from disk) once."""
        self._parents.extend((s, frozenset(r.file for r in s.records)) for s in sets if s is not None and len(s))

    def extractor(self, name: str) -> Any:
        if name not in self._extractors:
            from usbench.metrics import EXTRACTORS

            self._extractors[name] = EXTRACTORS.get(name).from_config(dict(self.options.get(name, {})))
        return self._extractors[name]

    def key(self, imageset: ImageSet, name: str) -> str:
        ext = self.extractor(name)
        return hashlib.sha256(f"{imageset.content_hash()}|{ext.fingerprint()}|{size_token(self.image_size)}".encode()).hexdigest()

    def __call__(self, imageset: ImageSet, name: str) -> np.ndarray:
        rows = [self._rows.get((name, r.file)) for r in imageset.records]
        if all(r is not None for r in rows) and rows:
            return np.stack(rows)  # type: ignore[arg-type]
        files = {r.file for r in imageset.records}
        parent = next((p for p, p_files in self._parents if files <= p_files), None)
        if parent is not None and parent is not imageset:
            self(parent, name)
            return np.stack([self._rows[(name, r.file)] for r in imageset.records])
        feats = self._load_or_compute(imageset, name)
        for rec, row in zip(imageset.records, feats):
            self._rows[(name, rec.file)] = row
        return feats

    def _load_or_compute(self, imageset: ImageSet, name: str) -> np.ndarray:
        key = self.key(imageset, name)
        path = self.cache_dir / f"{key}.npz" if self.cache_dir else None
        if path is not None and path.is_file():
            with np.load(path) as z:
                self.hits += 1
                return z["features"]
        self.misses += 1
        ext = self.extractor(name)
        images = (imageset.load_image(r, self.image_size) for r in imageset.records)
        feats = np.asarray(ext.extract(track(images, len(imageset), f"{name} features of {imageset.name}", self.progress),
                                       len(imageset)), dtype=np.float64)
        if feats.shape[0] != len(imageset):
            raise RuntimeError(f"extractor {name} returned {feats.shape[0]} rows for {len(imageset)} images")
        if not np.isfinite(feats).all():
            raise InputError(
                f"extractor {name} gave NaN or infinite features for {imageset.name}",
                "check the images (constant or corrupt) and the weights file",
            )
        if path is not None:
            buf = io.BytesIO()
            np.savez(buf, features=feats, ids=np.array(imageset.ids))
            atomic_write_bytes(path, buf.getvalue())
        return feats
