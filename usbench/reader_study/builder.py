"""Build a blinded reader study folder from a real reference set and generator runs.

Layout of ``STUDY/``::

    study.toml          every choice (sizes, seed, prevalence, readers, navigation, runs)
    images/<id>.png     every case re-encoded identically; <id> is random and opaque
    ratings.sqlite      the store (sequences, token hashes, ratings)
    admin/key.csv       id → source, generator, label, original file (mode 0600)
    admin/links.txt     the secret links (mode 0600)
    admin/audit.json    the blinding audit made at creation

Blinding, by construction: every image goes through the same path — decode to 8-bit gray,
centre-crop to a square (a non-square real image next to square generated ones would give it away),
resize to the study size with bicubic interpolation, write one uncompressed ``L`` PNG with no
metadata, so every file of a study has the same dimensions, bit depth, chunks and byte size. Names
are random tokens; files are written in a random order and then given one common mtime; repeats are
new files under fresh ids, interleaved after a washout; each reader's order is a seeded shuffle
over all sources. :mod:`usbench.reader_study.audit` checks all of it before the study is kept.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
from PIL import Image

from usbench.errors import ConfigError, InputError, NotEnoughImagesError, OutputError
from usbench.imageset import ImageSet, atomic_write_bytes, atomic_write_text, ensure_writable_dir, read_gray
from usbench.reader_study.files import open_store, read_config, read_key  # noqa: F401  (re-exported)
from usbench.reader_study.store import DB_NAME, RatingsStore, SequenceItem

REAL = "real"
SYNTHETIC = "synthetic"
KEY_COLUMNS = ("image_id", "block", "source", "generator", "truth", "label", "original_file", "original_id", "repeat_of")
DRAWS = 3  # a study whose random draws (ids, write order, reader orders) correlate with the source by chance is drawn again
SCALE = ("definitely real", "probably real", "unsure", "probably synthetic", "definitely synthetic")


DETAIL_ROLES = ("radiologist", "radiology resident", "sonographer", "other physician", "other")
DETAIL_VOLUMES = ("fewer than 5", "5 to 20", "20 to 50", "more than 50")  # breast ultrasound exams read per week


@dataclass
class Question:
    """An optional extra question asked with every rated image (e.g. "is the lesion plausible?")."""

    key: str
    text: str
    options: list

    def validate(self) -> None:
        if not self.key or not all(ch.isalnum() or ch == "_" for ch in self.key):
            raise ConfigError(f"question key {self.key!r} must be letters, digits or _", 'e.g. key = "plausible"')
        if not self.text or len(self.options) < 2 or len(set(map(str, self.options))) != len(self.options):
            raise ConfigError(f"question {self.key!r} needs a text and two or more distinct options", 'e.g. options = ["yes", "no"]')


@dataclass
class StudyConfig:
    """The choices of a study; written to ``study.toml`` (and read from ``study create --config``)."""

    readers: list = field(default_factory=lambda: ["reader1", "reader2"])
    n_per_source: int = 20  # synthetic cases per generator run
    synthetic_prevalence: float = 0.5  # share of synthetic cases among main cases
    size: int = 256  # every image is shown at size x size pixels
    seed: int = 0
    practice: int = 0  # practice cases (with feedback, not analysed), half real half synthetic
    repeats: int = 0  # main cases shown a second time, under a fresh id (intra-reader consistency)
    washout: int = 10  # at least this many other items between a case and its repeat
    afc_pairs: int = 0  # 2AFC pairs per generator (a real and a synthetic image side by side)
    allow_back: bool = True  # readers may go back and change an answer
    title: str = "Which images are real?"
    instructions: str = ""  # Markdown shown before the first image; empty = a text made from the settings
    disclose_prevalence: bool = False  # the instructions say how many images are synthetic
    ask_details: bool = True  # ask role, years of experience and ultrasound volume once
    questions: list = field(default_factory=list)  # extra questions (Question or dicts with key, text, options)
    show_own_result: bool = False  # a reader sees their own accuracy once they have finished
    token_days: float = 0.0  # links expire after this many days (0 = never)
    fsync_each_rating: bool = False  # SQLite synchronous=FULL: survives power cuts, slower on slow disks
    base_url: str = "http://127.0.0.1:8501"  # where readers will reach the app (for the printed links)

    def __post_init__(self) -> None:
        self.questions = [q if isinstance(q, Question) else Question(**_only(q, Question, "question")) for q in self.questions]

    def validate(self) -> None:
        if len(self.readers) < 1 or len(set(self.readers)) != len(self.readers):
            raise ConfigError("readers must be one or more distinct names", "e.g. --readers alice,bob,carol")
        for r in self.readers:
            check_reader_name(r)
        if self.n_per_source < 1:
            raise ConfigError("n_per_source must be at least 1", "e.g. --n-per-source 20")
        if not 0 < self.synthetic_prevalence < 1:
            raise ConfigError("synthetic_prevalence must be between 0 and 1 (exclusive)", "e.g. --prevalence 0.5")
        if not 32 <= self.size <= 2048:
            raise ConfigError(f"size {self.size} is outside 32..2048", "use 256 or 512")
        if min(self.practice, self.repeats, self.afc_pairs, self.washout) < 0 or self.token_days < 0:
            raise ConfigError("practice, repeats, washout, afc_pairs and token_days must be >= 0", "use 0 to switch them off")
        for q in self.questions:
            q.validate()
        if len({q.key for q in self.questions}) != len(self.questions):
            raise ConfigError("two extra questions have the same key", "give each question its own key")

    @classmethod
    def from_toml(cls, path: Path, overrides: dict | None = None) -> "StudyConfig":
        """The ``[study]`` table of a TOML file (``questions`` as ``[[study.questions]]``); ``instructions_file``
        names a Markdown file relative to the TOML file. ``overrides`` (flags given) win."""
        import tomllib

        path = Path(path)
        if not path.is_file():
            raise InputError(f"study config {path} does not exist", "give a TOML file with a [study] table (see docs/reader_study.md)")
        try:
            table = tomllib.loads(path.read_text()).get("study")
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML ({exc})", "fix the file") from None
        if not isinstance(table, dict):
            raise ConfigError(f"{path} has no [study] table", "put the settings under [study]")
        table = dict(table)
        if "instructions_file" in table:
            md = path.parent / str(table.pop("instructions_file"))
            if not md.is_file():
                raise InputError(f"instructions_file {md} does not exist", "give a Markdown file next to the config")
            table["instructions"] = md.read_text()
        table.update(overrides or {})
        return cls(**_only(table, cls, f"{path} [study]"))


def _only(d: dict, cls, where: str) -> dict:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}", f"known keys: {', '.join(sorted(names))}")
    return dict(d)


def check_reader_name(r: str) -> None:
    if r.startswith("__"):
        raise ConfigError(f"reader name {r!r} starts with '__', which is reserved", "rename the reader")
    if not r or not all(ch.isalnum() or ch in "-_." for ch in r):
        raise ConfigError(f"reader name {r!r} has characters other than letters, digits, - _ .", "use simple names")


def default_instructions(cfg: StudyConfig, n_items: int) -> str:
    """The instructions page when the study gives none: task, scale, rules, estimated time."""
    minutes = max(1, round(n_items * 8 / 60))
    lines = [
        f"## {cfg.title}", "",
        "You will see breast ultrasound images, one at a time. Some are **real** scans, some were **generated** by a computer model.",
        "For each image, say how sure you are that it is real or synthetic, on a 5-point scale.", "",
    ]
    if cfg.disclose_prevalence:
        lines += [f"About **{round(100 * cfg.synthetic_prevalence)} %** of the images are synthetic.", ""]
    if cfg.afc_pairs:
        lines += ["In the last block you see **two images side by side**: one is real, one is synthetic. Pick the real one.", ""]
    lines += [
        "* Judge each image on its own; take the time you need, but your first impression is fine.",
        "* Do not discuss the images with others while the study runs.",
        "* " + ("You can go back and change an answer until you answer the last image; then your answers are locked."
                if cfg.allow_back else "Answers are final: there is no going back."),
        "* Keys: **1–5** answer, **B** goes back, **Z** cycles the zoom (fit, 1:1, 2×, 3×; scroll to pan), "
        "**←** / **→** pick the left or right image of a pair. Brightness and contrast are under the zoom.",
        "", f"There are {n_items} items; this takes about **{minutes} minutes**. You can stop and come back with the same link.",
    ]
    if cfg.practice:
        lines += ["", f"The first {cfg.practice} images are practice: you will be told the answer, and they are not analysed."]
    return "\n".join(lines)


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


ENCODING = "8-bit L PNG, centre square crop, bicubic resize, zlib level 0 (stored): every file of a study has the same byte size; no metadata"


def encode_for_study(arr: np.ndarray, size: int) -> bytes:
    """The one re-encoding every case gets: centre square crop, bicubic resize, uncompressed 8-bit L PNG.

    Uncompressed (zlib stored blocks), so the byte size depends only on the dimensions: a real and a
    synthetic image of one study have exactly the same size (a compressed size would tell them apart).
    """
    h, w = arr.shape
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    sq = arr[top:top + s, left:left + s]
    im = Image.fromarray(np.ascontiguousarray(sq), mode="L")
    if s != size:
        im = im.resize((size, size), Image.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False, compress_level=0)  # no pnginfo: no text chunks
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
    """Sample, blind, write and audit a study; return the secret tokens (printed once by the CLI).

    The study is written into a hidden sibling folder, audited for blinding leaks
    (:mod:`usbench.reader_study.audit`) and only then renamed into place: a leaking or half-made
    study never appears at ``out``.
    """
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

    G = len(run_inputs)
    n_syn_total = config.n_per_source * G
    n_real = int(round(n_syn_total * (1 - config.synthetic_prevalence) / config.synthetic_prevalence))
    n_prac_real, n_prac_syn = config.practice - config.practice // 2, config.practice // 2
    n_afc = config.afc_pairs
    if config.repeats and n_real + n_syn_total < config.washout + 2:
        raise ConfigError(f"a washout of {config.washout} items needs more than {n_real + n_syn_total} main cases",
                          "lower --washout or add cases (--n-per-source)")
    rng = np.random.default_rng(config.seed)

    # (block, source, generator, truth, ImageRecord) for every case; 2AFC images are extra cases
    cases: list[tuple] = []
    real_pick = _sample(real, n_real + n_prac_real + n_afc * G, config.seed, f"the reference set {reference}")
    real_recs = list(real_pick.records)
    rng.shuffle(real_recs)
    blocks = ["practice"] * n_prac_real + ["2afc"] * (n_afc * G) + ["main"] * n_real
    for block, rec in zip(blocks, real_recs):
        cases.append((block, REAL, REAL, 0, rec))
    prac_from = rng.integers(G, size=n_prac_syn) if n_prac_syn else np.array([], int)
    for g, run in enumerate(run_inputs):
        k_prac = int((prac_from == g).sum())
        pick = _sample(run.images, config.n_per_source + k_prac + n_afc, config.seed + 1 + g, f"run {run.run_id}")
        recs = list(pick.records)
        rng.shuffle(recs)
        for block, rec in zip(["practice"] * k_prac + ["2afc"] * n_afc + ["main"] * config.n_per_source, recs):
            cases.append((block, SYNTHETIC, run.run_id, 1, rec))

    ensure_writable_dir(final.parent)
    from usbench.reader_study.audit import RANDOM_CHANNELS, BlindingLeakError, audit_study, format_audit  # scipy, only here

    for draw in range(1, DRAWS + 1):
        out = final.parent / f".{final.name}.partial-{secrets.token_hex(4)}"
        try:
            links = _write_study(out, final, reference, runs, run_inputs, cases, config, n_real, n_syn_total, progress)
            report = audit_study(out)
            report["draw"] = draw
            _write_private(out / "admin" / "audit.json", json.dumps(report, indent=2))
            chance = report["leaks"] and all(r["channel"] in RANDOM_CHANNELS for r in report["leaks"]) \
                and all(c["ok"] for c in report["checks"])
            if not report["passed"] and chance and draw < DRAWS:
                # ids, write order and reader orders are random draws: an accidental correlation is drawn again
                shutil.rmtree(out, ignore_errors=True)
                continue
            if not report["passed"]:
                leak = report["leaks"][0] if report["leaks"] else {"channel": "the repeat rules", "comparison": "-", "auc": float("nan"), "p": float("nan")}
                raise BlindingLeakError(f"the study would leak which images are real through {leak['channel']} "
                                        f"({leak['comparison']}: AUC {leak['auc']:.2f}, p = {leak['p']:.2g}); nothing was written",
                                        "report this as a bug of usbench with the output of `usbench study audit`: "
                                        + format_audit(report).splitlines()[0])
            if final.exists():
                final.rmdir()
            os.replace(out, final)
            break
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)
            raise
    links.study = final
    return links


def _unique_id(used: set[str]) -> str:
    image_id = secrets.token_hex(6)
    while image_id in used:
        image_id = secrets.token_hex(6)
    used.add(image_id)
    return image_id


def _write_images(folder: Path, files: dict[str, bytes]) -> None:
    """Write the images in a random order (inode numbers and creation order say nothing), then give
    every file one common mtime and atime (a file's time says nothing either)."""
    order = list(files)
    random.SystemRandom().shuffle(order)
    for image_id in order:
        atomic_write_bytes(folder / f"{image_id}.png", files[image_id])
    stamp = float(int(time.time()))
    for image_id in order:
        os.utime(folder / f"{image_id}.png", (stamp, stamp))
    os.utime(folder, (stamp, stamp))


def reader_sequence(key_rows: list[dict], config: StudyConfig, index: int) -> list[SequenceItem]:
    """The seeded order of reader number ``index``: practice, then the main cases with the repeats
    interleaved (each at least ``washout`` items after its first showing), then the 2AFC pairs."""
    r_rng = np.random.default_rng([config.seed, index])
    by_block: dict[str, list[dict]] = {}
    for r in sorted(key_rows, key=lambda r: r["image_id"]):
        by_block.setdefault(r["block"], []).append(r)
    practice = [r["image_id"] for r in by_block.get("practice", [])]
    seq = [SequenceItem(0, iid, iid, "practice") for iid in (practice[i] for i in r_rng.permutation(len(practice)))]

    main = [r["image_id"] for r in by_block.get("main", [])]
    order = [main[i] for i in r_rng.permutation(len(main))]
    repeats = by_block.get("repeat", [])
    originals = {r["repeat_of"] for r in repeats}
    # an original in the last `washout` places could not get its repeat far enough behind it:
    # swap it with a random non-original from earlier (a choice blind to the source)
    tail_from = max(len(order) - config.washout - 1, 0)
    for i in range(tail_from, len(order)):
        if order[i] in originals:
            free = [j for j in range(tail_from) if order[j] not in originals]
            if free:
                j = free[int(r_rng.integers(len(free)))]
                order[i], order[j] = order[j], order[i]
    items = [(iid, iid, "main") for iid in order]
    for r in (repeats[i] for i in r_rng.permutation(len(repeats))):
        at = next(k for k, it in enumerate(items) if it[0] == r["repeat_of"])
        slot = int(r_rng.integers(min(at + config.washout + 1, len(items)), len(items) + 1))
        items.insert(slot, (r["image_id"], r["image_id"], "repeat"))
    seq += [SequenceItem(0, item, iid, block) for item, iid, block in items]

    afc = by_block.get("2afc", [])
    pairs = _afc_pairs(afc, config.seed)
    for k in r_rng.permutation(len(pairs)):
        real_id, syn_id = pairs[k]
        left, right = (real_id, syn_id) if r_rng.random() < 0.5 else (syn_id, real_id)
        seq.append(SequenceItem(0, "pair-" + "-".join(sorted((real_id, syn_id))), left, "2afc", "2afc", right))  # the name tells no side
    return [SequenceItem(p, s.item, s.image_id, s.block, s.task, s.image_id_b) for p, s in enumerate(seq)]


def _afc_pairs(afc_rows: list[dict], seed: int) -> list[tuple[str, str]]:
    """The study's fixed 2AFC pairs (real id, synthetic id): each generator's images with as many real ones."""
    rng = np.random.default_rng([seed, 2])
    real = [r["image_id"] for r in afc_rows if int(r["truth"]) == 0]
    real = [real[i] for i in rng.permutation(len(real))]
    pairs = []
    for g in sorted({r["generator"] for r in afc_rows if int(r["truth"]) == 1}):
        for syn in (r["image_id"] for r in afc_rows if r["generator"] == g):
            pairs.append((real.pop(), syn))
    return pairs


def _write_study(out, final, reference, runs, run_inputs, cases, config, n_real, n_syn_total, progress) -> "StudyLinks":
    out.mkdir()
    (out / "images").mkdir()
    admin = out / "admin"
    admin.mkdir(mode=0o700)
    key_rows, files = [], {}
    used: set[str] = set()
    for n, (block, source, generator, truth, rec) in enumerate(cases):
        image_id = _unique_id(used)
        files[image_id] = encode_for_study(read_gray(rec.file), config.size)
        key_rows.append({"image_id": image_id, "block": block, "source": source, "generator": generator, "truth": truth,
                         "label": rec.label, "original_file": str(rec.file), "original_id": rec.id, "repeat_of": ""})
        if progress:
            progress(n + 1, len(cases))
    # repeats: the same study cases for every reader, each under a fresh id (a new file with the same pixels)
    main_rows = sorted((r for r in key_rows if r["block"] == "main"), key=lambda r: r["image_id"])
    n_rep = min(config.repeats, len(main_rows))
    rep_rng = np.random.default_rng([config.seed, 1])
    for i in sorted(rep_rng.choice(len(main_rows), size=n_rep, replace=False).tolist()) if n_rep else []:
        orig = main_rows[i]
        image_id = _unique_id(used)
        files[image_id] = files[orig["image_id"]]
        key_rows.append({**orig, "image_id": image_id, "block": "repeat", "repeat_of": orig["image_id"]})
    _write_images(out / "images", files)

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=KEY_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(sorted(key_rows, key=lambda r: r["image_id"]))  # sorted by the random id: file order tells nothing
    _write_private(admin / "key.csv", buf.getvalue())

    practice_rows = sorted((r for r in key_rows if r["block"] == "practice"), key=lambda r: r["image_id"])
    # The app gives feedback on practice images, so their truth (and only theirs) sits outside admin/.
    atomic_write_text(out / "practice.csv", "image_id,source\n" + "".join(f"{r['image_id']},{r['source']}\n" for r in practice_rows))
    store = RatingsStore(out / DB_NAME, create=True, fsync_each_rating=config.fsync_each_rating)
    tokens = {}
    expires = time.time() + config.token_days * 86400 if config.token_days else None
    try:
        for idx, reader in enumerate(config.readers):
            tokens[reader] = secrets.token_urlsafe(24)
            store.add_reader(reader, tokens[reader], expires_at=expires)
            store.set_sequence(reader, reader_sequence(key_rows, config, idx))
        admin_token = secrets.token_urlsafe(24)
        store.add_reader("__admin__", admin_token, is_admin=True)
        n_items = len(store.sequence(config.readers[0]))
    finally:
        store.close()

    settings = asdict(config)
    if not settings["instructions"]:
        settings["instructions"] = default_instructions(config, n_items)
    settings.update({
        "study_id": secrets.token_hex(8),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "reference": str(Path(reference).resolve()),
        "runs": [{"run_id": r.run_id, "generator": r.generator, "path": str(Path(p).resolve())} for r, p in zip(run_inputs, runs)],
        "n_real": n_real, "n_synthetic": n_syn_total, "n_practice": len(practice_rows), "n_repeats": n_rep,
        "n_afc_pairs": config.afc_pairs * len(run_inputs),
        "scale": list(SCALE),
        "encoding": ENCODING,
    })
    import tomli_w

    atomic_write_text(out / "study.toml", tomli_w.dumps({"study": settings}))
    links = StudyLinks(final, tokens, admin_token, config.base_url)
    write_links(out, links.links())
    return links


def write_links(study: Path, links: dict[str, str]) -> None:
    _write_private(Path(study) / "admin" / "links.txt", "\n".join(f"{k}\t{v}" for k, v in links.items()) + "\n")


def read_links(study: Path) -> dict[str, str]:
    path = Path(study) / "admin" / "links.txt"
    if not path.is_file():
        return {}
    return dict(line.split("\t", 1) for line in path.read_text().splitlines() if "\t" in line)


# --------------------------------------------------------------------------------------------
# Reader management after creation (``usbench study readers ...``)


def _expiry(days: float | None) -> float | None:
    if days is not None and days < 0:
        raise ConfigError("--expires-days must be >= 0", "0 or leave it out for links that never expire")
    return time.time() + days * 86400 if days else None


def _link(study: Path, token: str) -> str:
    return f"{str(read_config(study).get('base_url', 'http://127.0.0.1:8501')).rstrip('/')}/?token={token}"


def add_reader(study: Path, reader: str, expires_days: float | None = None) -> str:
    """A new reader with their own seeded order over the study's cases; returns their link."""
    check_reader_name(reader)
    study = Path(study)
    config = read_config(study)
    cfg = StudyConfig(**{k: v for k, v in config.items() if k in {f.name for f in fields(StudyConfig)}})
    token = secrets.token_urlsafe(24)
    with open_store(study) as s:
        if reader in s.readers():
            raise ConfigError(f"the study already has a reader {reader!r}", "choose another name, or `study readers reissue` for a new link")
        index = len(s.readers())  # the next reader index: a seeded order of its own
        s.add_reader(reader, token, expires_at=_expiry(expires_days))
        s.set_sequence(reader, reader_sequence(read_key(study), cfg, index))
    return _remember_link(study, reader, _link(study, token))


def reissue_reader(study: Path, reader: str, expires_days: float | None = None) -> str:
    """A new link for ``reader`` (the old one stops working); answers and place are kept."""
    token = secrets.token_urlsafe(24)
    with open_store(study) as s:
        s.reissue(reader, token, _expiry(expires_days))
    return _remember_link(study, reader, _link(study, token))


def revoke_reader(study: Path, reader: str) -> None:
    with open_store(study) as s:
        s.revoke(reader)
    links = read_links(study)
    links.pop(reader, None)
    write_links(study, links)


def unlock_reader(study: Path, reader: str) -> None:
    with open_store(study) as s:
        s.unlock(reader)


def _remember_link(study: Path, reader: str, link: str) -> str:
    links = read_links(study)
    links[reader] = link
    write_links(study, links)
    return link
