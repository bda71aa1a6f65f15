"""Build a blinded reader study folder from a real reference set and generator runs.

Layout of ``STUDY/``::

    study.toml          every choice (sizes, seed, prevalence, readers, navigation, runs)
    images/<id>.png     every case re-encoded identically; <id> is random and opaque
    ratings.sqlite      the store (sequences, token hashes, ratings)
    admin/key.csv       id → source, generator, label, original file (mode 0600)
    admin/links.txt     the secret links (mode 0600)

Blinding: every image goes through the same path — decode to 8-bit gray, centre-crop to a square
(a non-square real image next to square generated ones would give it away), resize to the study
size with bicubic interpolation, write one ``L`` PNG with fixed parameters and no metadata. Names
are random tokens; each reader's order is a seeded shuffle over all sources.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from usbench.errors import ConfigError, InputError, NotEnoughImagesError, OutputError
from usbench.imageset import ImageSet, atomic_write_bytes, atomic_write_text, ensure_writable_dir, read_gray
from usbench.reader_study.store import DB_NAME, RatingsStore, SequenceItem

REAL = "real"
SYNTHETIC = "synthetic"
KEY_COLUMNS = ("image_id", "block", "source", "generator", "truth", "label", "original_file", "original_id")


@dataclass
class StudyConfig:
    """The choices of a study; written to ``study.toml``."""

    readers: list = field(default_factory=lambda: ["reader1", "reader2"])
    n_per_source: int = 20  # synthetic cases per generator run
    synthetic_prevalence: float = 0.5  # share of synthetic cases among main cases
    size: int = 256  # every image is shown at size x size pixels
    seed: int = 0
    practice: int = 0  # practice cases (with feedback, not analysed), half real half synthetic
    repeats: int = 0  # main cases shown a second time at the end (intra-reader consistency)
    allow_back: bool = True  # readers may go back and change an answer
    title: str = "Which images are real?"
    fsync_each_rating: bool = False  # SQLite synchronous=FULL: survives power cuts, slower on slow disks
    base_url: str = "http://127.0.0.1:8501"  # where readers will reach the app (for the printed links)

    def validate(self) -> None:
        if len(self.readers) < 1 or len(set(self.readers)) != len(self.readers):
            raise ConfigError("readers must be one or more distinct names", "e.g. --readers alice,bob,carol")
        for r in self.readers:
            if r.startswith("__"):
                raise ConfigError(f"reader name {r!r} starts with '__', which is reserved", "rename the reader")
            if not r or not all(ch.isalnum() or ch in "-_." for ch in r):
                raise ConfigError(f"reader name {r!r} has characters other than letters, digits, - _ .", "use simple names")
        if self.n_per_source < 1:
            raise ConfigError("n_per_source must be at least 1", "e.g. --n-per-source 20")
        if not 0 < self.synthetic_prevalence < 1:
            raise ConfigError("synthetic_prevalence must be between 0 and 1 (exclusive)", "e.g. --prevalence 0.5")
        if not 32 <= self.size <= 2048:
            raise ConfigError(f"size {self.size} is outside 32..2048", "use 256 or 512")
        if self.practice < 0 or self.repeats < 0:
            raise ConfigError("practice and repeats must be >= 0", "use 0 to switch them off")


@dataclass
class RunInput:
    run_id: str
    generator: str
    images: ImageSet


def _load_set(path: Path) -> ImageSet:
    """Load a real set in any supported layout (usbench.datasets, which also knows built-in set names),
    or, where that module is absent, an ImageSet folder."""
    try:
        from usbench.datasets import load
    except ImportError:
        load = None
    if load is not None:
        return load(path)
    if not Path(path).exists():
        raise InputError(f"{path} does not exist", "give the folder of the real reference set")
    return ImageSet.read(path)


def load_run(path: Path) -> RunInput:
    """A generator run folder: an ImageSet plus optional ``run.json`` with run_id and generator."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"run folder {path} does not exist", "give a generator run directory (manifest.csv + images/)")
    images = ImageSet.read(path)
    run_id = generator = path.resolve().name
    meta = path / "run.json"
    if meta.is_file():
        try:
            info = json.loads(meta.read_text())
        except json.JSONDecodeError:
            raise InputError(f"{meta} is not valid JSON", "fix or delete it") from None
        run_id = str(info.get("run_id") or run_id)
        generator = str(info.get("generator") or generator)
    return RunInput(run_id, generator, images)


def encode_for_study(arr: np.ndarray, size: int) -> bytes:
    """The one re-encoding every case gets: centre square crop, bicubic resize, plain 8-bit L PNG."""
    h, w = arr.shape
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    sq = arr[top:top + s, left:left + s]
    im = Image.fromarray(np.ascontiguousarray(sq), mode="L")
    if s != size:
        im = im.resize((size, size), Image.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False, compress_level=6)  # no pnginfo: no text chunks
    return buf.getvalue()


def _sample(images: ImageSet, n: int, seed: int, what: str) -> ImageSet:
    if n > len(images):
        raise NotEnoughImagesError(f"the study needs {n} images from {what} but it has {len(images)}",
                                   "lower --n-per-source or --prevalence, or add images")
    return images.take(n, seed=seed, stratify=True)


def _write_private(path: Path, text: str) -> None:
    atomic_write_text(path, text)
    os.chmod(path, 0o600)


@dataclass
class StudyLinks:
    study: Path
    reader_tokens: dict[str, str]
    admin_token: str

    base_url: str = "http://127.0.0.1:8501"

    def links(self, base_url: str | None = None) -> dict[str, str]:
        base_url = (base_url or self.base_url).rstrip("/")
        out = {r: f"{base_url}/?token={t}" for r, t in self.reader_tokens.items()}
        out["admin"] = f"{base_url}/?token={self.admin_token}"
        return out


def create_study(reference: Path, runs: list[Path], out: Path, config: StudyConfig, progress=None) -> StudyLinks:
    """Sample, blind and write a study; return the secret tokens (printed once by the CLI)."""
    config.validate()
    if not runs:
        raise InputError("no generator run given", "add one or more --run DIR")
    final = Path(out)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise OutputError(f"{final} exists and is not empty", "choose a new --out folder; a study is never overwritten")
    real = _load_set(reference)
    run_inputs = [load_run(p) for p in runs]
    ids = [r.run_id for r in run_inputs]
    if len(set(ids)) != len(ids):
        raise InputError(f"two runs have the same run_id ({', '.join(ids)})", "give each run once")

    n_syn_total = config.n_per_source * len(run_inputs)
    n_real = int(round(n_syn_total * (1 - config.synthetic_prevalence) / config.synthetic_prevalence))
    n_prac_real, n_prac_syn = config.practice - config.practice // 2, config.practice // 2
    rng = np.random.default_rng(config.seed)

    # (block, source, generator, truth, ImageRecord, set) for every case
    cases: list[tuple] = []
    real_pick = _sample(real, n_real + n_prac_real, config.seed, f"the reference set {reference}")
    real_recs = list(real_pick.records)
    rng.shuffle(real_recs)
    for i, rec in enumerate(real_recs):
        cases.append(("practice" if i < n_prac_real else "main", REAL, REAL, 0, rec, real))
    prac_from = rng.integers(len(run_inputs), size=n_prac_syn) if n_prac_syn else np.array([], int)
    for g, run in enumerate(run_inputs):
        k_prac = int((prac_from == g).sum())
        pick = _sample(run.images, config.n_per_source + k_prac, config.seed + 1 + g, f"run {run.run_id}")
        recs = list(pick.records)
        rng.shuffle(recs)
        for i, rec in enumerate(recs):
            cases.append(("practice" if i < k_prac else "main", SYNTHETIC, run.run_id, 1, rec, run.images))

    # Everything is written into a hidden sibling folder and renamed at the end: no half-made study.
    ensure_writable_dir(final.parent)
    out = final.parent / f".{final.name}.partial-{secrets.token_hex(4)}"
    try:
        links = _write_study(out, final, reference, runs, run_inputs, cases, config, n_real, n_syn_total, progress)
        if final.exists():
            final.rmdir()
        os.replace(out, final)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    links.study = final
    return links


def _write_study(out, final, reference, runs, run_inputs, cases, config, n_real, n_syn_total, progress) -> "StudyLinks":
    out.mkdir()
    (out / "images").mkdir()
    admin = out / "admin"
    admin.mkdir(mode=0o700)
    key_rows = []
    used: set[str] = set()
    for n, (block, source, generator, truth, rec, _set) in enumerate(cases):
        image_id = secrets.token_hex(6)
        while image_id in used:
            image_id = secrets.token_hex(6)
        used.add(image_id)
        atomic_write_bytes(out / "images" / f"{image_id}.png", encode_for_study(read_gray(rec.file), config.size))
        key_rows.append({"image_id": image_id, "block": block, "source": source, "generator": generator, "truth": truth,
                         "label": rec.label, "original_file": str(rec.file), "original_id": rec.id})
        if progress:
            progress(n + 1, len(cases))

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=KEY_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(sorted(key_rows, key=lambda r: r["image_id"]))  # sorted by the random id: file order tells nothing
    _write_private(admin / "key.csv", buf.getvalue())

    practice_ids = sorted(r["image_id"] for r in key_rows if r["block"] == "practice")
    # The app gives feedback on practice images, so their truth (and only theirs) sits outside admin/.
    atomic_write_text(out / "practice.csv", "image_id,source\n" + "".join(
        f"{r['image_id']},{r['source']}\n" for r in sorted(key_rows, key=lambda r: r["image_id"]) if r["block"] == "practice"))
    main_ids = sorted(r["image_id"] for r in key_rows if r["block"] == "main")
    n_rep = min(config.repeats, len(main_ids))
    store = RatingsStore(out / DB_NAME, create=True, fsync_each_rating=config.fsync_each_rating)
    tokens = {}
    try:
        for idx, reader in enumerate(config.readers):
            r_rng = np.random.default_rng([config.seed, idx])
            order = [practice_ids[i] for i in r_rng.permutation(len(practice_ids))]
            seq = [SequenceItem(p, iid, iid, "practice") for p, iid in enumerate(order)]
            main_order = [main_ids[i] for i in r_rng.permutation(len(main_ids))]
            seq += [SequenceItem(len(seq) + p, iid, iid, "main") for p, iid in enumerate(main_order)]
            reps = [main_ids[i] for i in r_rng.choice(len(main_ids), size=n_rep, replace=False)] if n_rep else []
            seq += [SequenceItem(len(seq) + p, f"{iid}~2", iid, "repeat") for p, iid in enumerate(reps)]
            tokens[reader] = secrets.token_urlsafe(24)
            store.add_reader(reader, tokens[reader])
            store.set_sequence(reader, seq)
        admin_token = secrets.token_urlsafe(24)
        store.add_reader("__admin__", admin_token, is_admin=True)
    finally:
        store.close()

    settings = asdict(config)
    settings.update({
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "reference": str(Path(reference).resolve()),
        "runs": [{"run_id": r.run_id, "generator": r.generator, "path": str(Path(p).resolve())} for r, p in zip(run_inputs, runs)],
        "n_real": n_real, "n_synthetic": n_syn_total, "n_practice": len(practice_ids), "n_repeats": n_rep,
        "scale": ["definitely real", "probably real", "unsure", "probably synthetic", "definitely synthetic"],
        "encoding": "8-bit L PNG, centre square crop, bicubic resize, compress_level 6, no metadata",
    })
    import tomli_w

    atomic_write_text(out / "study.toml", tomli_w.dumps({"study": settings}))
    links = StudyLinks(final, tokens, admin_token, config.base_url)
    _write_private(admin / "links.txt", "\n".join(f"{k}\t{v}" for k, v in links.links().items()) + "\n")
    return links


def read_config(study: Path) -> dict:
    """The ``[study]`` table of ``study.toml``."""
    import tomllib

    path = Path(study) / "study.toml"
    if not path.is_file():
        raise InputError(f"{study} has no study.toml", "point to a folder made by `usbench study create`")
    return tomllib.loads(path.read_text())["study"]


def read_key(study: Path) -> list[dict]:
    """The admin key; only analysis and the admin page call this."""
    path = Path(study) / "admin" / "key.csv"
    if not path.is_file():
        raise InputError(f"the study {study} has no admin/key.csv", "the key is written by `usbench study create`; restore it from a backup")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["truth"] = int(r["truth"])
    return rows


def open_store(study: Path) -> RatingsStore:
    return RatingsStore(Path(study) / DB_NAME)
