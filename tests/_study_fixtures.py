"""Small image sets and studies for the reader-study tests (made on the fly, no data downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from usbench.imageset import ImageSetWriter
from usbench.reader_study.builder import StudyConfig, create_study


def make_set(root: Path, n: int, shape: tuple[int, int], seed: int, source: str, run_json: dict | None = None) -> Path:
    """n speckle-like images of ``shape``, half benign half malignant."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] / np.array(shape).reshape(2, 1, 1)
    with ImageSetWriter(root, source=source) as w:
        for i in range(n):
            # speckle over a depth gradient with one dark elliptic "lesion"
            cy, cx, ry, rx = rng.uniform(0.35, 0.65), rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.2), rng.uniform(0.1, 0.25)
            lesion = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
            echo = (1.2 - 0.7 * yy) * np.where(lesion, 0.25, 1.0)
            img = np.clip(rng.rayleigh(45 + 15 * (seed % 3), size=shape) * echo, 0, 255).astype(np.uint8)
            w.add(f"{source}-{i:03d}", img, label="benign" if i % 2 else "malignant", seed=i)
    if run_json is not None:
        (root / "run.json").write_text(json.dumps(run_json))
    return root


def make_inputs(tmp: Path, n_real: int = 24, n_syn: int = 12, generators: int = 2) -> tuple[Path, list[Path]]:
    # Real images are not square and of another size than the synthetic ones: blinding must hide it.
    real = make_set(tmp / "real", n_real, (90, 120), 1, "busi")
    runs = [make_set(tmp / f"run{g}", n_syn, (64, 64), 10 + g, f"gen{g}", {"run_id": f"gen{g}-run", "generator": f"gen{g}"})
            for g in range(generators)]
    return real, runs


def make_study(tmp: Path, readers=("alice", "bob", "carol"), n_per_source=6, generators=2, **kw):
    real, runs = make_inputs(tmp, generators=generators)
    size = kw.pop("size", 64)
    cfg = StudyConfig(readers=list(readers), n_per_source=n_per_source, size=size, seed=3, **kw)
    links = create_study(real, runs, tmp / "study", cfg)
    return tmp / "study", links


def simulate_ratings(study: Path, seed: int = 0, skill: float = 1.0) -> None:
    """Every reader rates every item: synthetic images drawn toward 5, real toward 1 (with noise)."""
    from usbench.reader_study.builder import open_store, read_key

    key = {r["image_id"]: r for r in read_key(study)}
    rng = np.random.default_rng(seed)
    store = open_store(study)
    try:
        for reader in store.readers():
            for it in store.sequence(reader):
                t = key[it.image_id]["truth"]
                gen_bonus = 0.5 if key[it.image_id]["generator"].startswith("gen1") else 0.0
                latent = skill * (t - 0.5) * 2 + gen_bonus * t + rng.normal(0, 1.0)
                rating = int(np.clip(np.round(3 + latent), 1, 5))
                store.mark_shown(reader, it.item)
                store.rate(reader, it.item, rating)
    finally:
        store.close()


def make_store(path: Path, n_readers: int, n_items: int):
    """A bare ratings store: n_readers readers with n_items items each (no images needed)."""
    from usbench.reader_study.store import RatingsStore, SequenceItem

    with RatingsStore(path, create=True) as s:
        for r in range(n_readers):
            s.add_reader(f"r{r}", f"token-{r}")
            s.set_sequence(f"r{r}", [SequenceItem(i, f"it{i}", f"img{i}", "main") for i in range(n_items)])
    return path


def expected_rating(reader: str, item: str) -> int:
    return sum(map(ord, reader + item)) % 5 + 1


def writer(path: str, reader: str, n_items: int, log: str | None = None, resubmit: bool = True) -> None:
    """One reader's session in its own process: show, rate (and resubmit) every item."""
    from usbench.reader_study.store import RatingsStore

    s = RatingsStore(path)
    f = open(log, "a", buffering=1) if log else None
    for i in range(n_items):
        item = f"it{i}"
        s.mark_shown(reader, item)
        s.rate(reader, item, expected_rating(reader, item))
        if f:
            f.write(f"{item}\n")  # written only after the commit returned
        if resubmit:
            s.rate(reader, item, expected_rating(reader, item))
    s.close()
