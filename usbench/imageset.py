"""ImageSet: the unit every stage exchanges.

An ImageSet is a folder of 8-bit grayscale PNGs plus ``manifest.csv`` with one row per image::

    id, file, mask_file, label, prompt, seed, source

Dataset readers build ImageSets whose rows point into the original folder (nothing is copied);
generators write new ones with :class:`ImageSetWriter`, which writes atomically so that a folder
with a ``manifest.csv`` is always complete.

>>> import numpy as np, tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "set"
>>> with ImageSetWriter(out, source="example") as w:
...     _ = w.add("a", np.zeros((8, 8), np.uint8), label="benign", seed=1)
>>> s = ImageSet.read(out)
>>> len(s), s.records[0].label, s.load_image(s.records[0]).shape
(1, 'benign', (8, 8))
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from usbench.errors import InputError, NotEnoughImagesError, OutputError

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("id", "file", "mask_file", "label", "prompt", "seed", "source")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class ImageRecord:
    """One image of a set. ``file`` and ``mask_file`` are absolute paths."""

    id: str
    file: Path
    label: str = ""
    mask_file: Path | None = None
    prompt: str = ""
    seed: int | None = None
    source: str = ""
    group: str = ""  # patient/case id where a dataset gives one (keeps views of one patient together)


# --------------------------------------------------------------------------------------------
# Reading pixels: every image becomes 2-D uint8, every mask 2-D bool, or a clear error.


def read_gray(path: Path) -> np.ndarray:
    """Read an image as 2-D uint8 grayscale.

    Grayscale stored as RGB (as BUSI does) is converted by luminance; a palette image is
    converted when its palette is gray. RGBA with real transparency and 16-bit images are refused
    with a reason, because silently dropping alpha or bits changes what is measured.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image {path} does not exist", "check the path or the manifest's file column")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I", "F") or (mode == "I;16N"):
                raise InputError(
                    f"image {path} is {mode} (16-bit or float); usbench measures 8-bit images",
                    "convert it to 8-bit grayscale first, e.g. PIL: im.point(lambda v: v / 256).convert('L')",
                )
            if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
                alpha = np.asarray(im.convert("RGBA"))[..., 3]
                if alpha.min() < 255:
                    raise InputError(
                        f"image {path} has a transparent alpha channel",
                        "flatten it onto black and save as grayscale PNG (PIL: im.convert('L'))",
                    )
                im = im.convert("RGB")
                mode = "RGB"
            if mode == "P":
                im = im.convert("RGB")
                mode = "RGB"
            if mode in ("RGB", "CMYK", "YCbCr"):
                arr = np.asarray(im.convert("RGB"))
                return np.asarray(Image.fromarray(arr).convert("L")) if not _gray_rgb(arr) else arr[..., 0].copy()
            if mode == "1":
                return (np.asarray(im, dtype=np.uint8) * 255).astype(np.uint8)
            if mode != "L":
                im = im.convert("L")
            return np.asarray(im, dtype=np.uint8).copy()
    except InputError:
        raise
    except Image.DecompressionBombError as exc:  # a header claiming hundreds of megapixels
        import re

        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f" ({int(pixels.group(1)) / 1e6:.0f} megapixels)" if pixels else ""
        raise InputError(f"image {path} is too large to decode safely{size}; Pillow refuses it as a possible "
                         "decompression bomb", f"downscale it below {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(
            f"image {path} is corrupt or truncated ({type(exc).__name__})",
            "re-export or remove the file",
        ) from None


def _gray_rgb(arr: np.ndarray) -> bool:
    return bool(np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]))


def read_mask(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a binary lesion mask as 2-D bool; refuse non-binary masks and masks of the wrong size."""
    arr = read_gray(path)
    # the gray levels present, by counting (read_gray gives uint8): np.unique hashes the whole image, 5x slower
    values = np.flatnonzero(np.bincount(arr.ravel(), minlength=256))
    if len(values) > 2 or (len(values) == 2 and values[0] != 0):
        raise InputError(
            f"mask {path} is not binary (values {values[:6].tolist()}{'...' if len(values) > 6 else ''})",
            "masks must hold 0 for background and one nonzero value for lesion; threshold it",
        )
    if shape is not None and arr.shape != tuple(shape):
        raise InputError(
            f"mask {path} is {arr.shape[1]}x{arr.shape[0]} but its image is {shape[1]}x{shape[0]}",
            "masks must have the size of their image; resize it with nearest-neighbour interpolation",
        )
    return arr > 0


def write_png(path: Path, arr: np.ndarray) -> None:
    """Write a 2-D uint8 (or bool) array as an 8-bit grayscale PNG with no metadata."""
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8 or arr.ndim != 2:
        raise ValueError(f"write_png needs a 2-D uint8 array, got {arr.dtype} {arr.shape}")
    Path(path).write_bytes(encode_png(arr))


def resize_gray(arr: np.ndarray, size: int | tuple[int, int] | None) -> np.ndarray:
    """Resize a uint8 image to ``size`` (square int or (h, w)) with bicubic interpolation."""
    if size is None:
        return arr
    h, w = (size, size) if isinstance(size, int) else size
    if arr.shape == (h, w):
        return arr
    return np.asarray(Image.fromarray(arr).resize((w, h), Image.BICUBIC))


def image_shape(path: Path) -> tuple[int, int]:
    """(h, w) of an image from its header (no decoding); a file that cannot be opened gives
    :func:`read_gray`'s one-line error."""
    try:
        with Image.open(path) as im:
            w, h = im.size
        return int(h), int(w)
    except Exception:  # noqa: BLE001 - read_gray says what is wrong with the file, in one line
        return read_gray(path).shape  # type: ignore[return-value]


def size_label(size: int | tuple[int, int]) -> str:
    """``"WxH"`` of a size: an int N (N×N) or (h, w); what results, keys and messages show."""
    h, w = (size, size) if isinstance(size, int) else size
    return f"{w}x{h}"


def size_token(size: int | tuple[int, int]) -> int | str:
    """A size as results and cache keys hold it: N when the pixels are N×N (a native N×N set and
    a resize to N give the same pixels, so they share keys), ``"WxH"`` otherwise."""
    h, w = (size, size) if isinstance(size, int) else size
    return int(h) if h == w else f"{w}x{h}"


def resize_mask(mask: np.ndarray, size: int | tuple[int, int] | None) -> np.ndarray:
    """Resize a bool mask with nearest-neighbour interpolation."""
    if size is None:
        return mask
    h, w = (size, size) if isinstance(size, int) else size
    if mask.shape == (h, w):
        return mask
    im = Image.fromarray(mask.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)
    return np.asarray(im) > 127


_SHA256_MEMO: dict[tuple[str, int, int, int], str] = {}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file; remembered in this process by (path, inode, size, mtime), so the per-label
    subsets and the reruns of one run do not read the same images again."""
    st = os.stat(path)
    key = (os.fspath(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _SHA256_MEMO:
        return _SHA256_MEMO[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    _SHA256_MEMO[key] = digest = h.hexdigest()
    return digest


# --------------------------------------------------------------------------------------------


@dataclass
class ImageSet:
    """An ordered list of :class:`ImageRecord` with a name and a root folder.

    ``masks`` of a record may be blank (no mask known). For datasets that read several mask
    files per image (BUSI's ``_mask_1.png``), ``extra_masks`` maps an id to the further files,
    which :meth:`load_mask` merges by union.
    """

    records: list[ImageRecord]
    name: str = "imageset"
    root: Path | None = None
    extra_masks: dict[str, tuple[Path, ...]] = field(default_factory=dict)
    _hash: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = [r.id for r in self.records]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise InputError(f"image set {self.name} has the id {dup!r} twice", "ids in manifest.csv must be unique")

    # -- container ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self.records)

    def __getitem__(self, i: int) -> ImageRecord:
        return self.records[i]

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]

    @property
    def labels(self) -> list[str]:
        """Labels present, in a stable order (normal, benign, malignant first, then others)."""
        order = {"normal": 0, "benign": 1, "malignant": 2}
        return sorted({r.label for r in self.records if r.label}, key=lambda l: (order.get(l, 9), l))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.records:
            out[r.label] = out.get(r.label, 0) + 1
        return out

    @property
    def has_masks(self) -> bool:
        return any(r.mask_file is not None for r in self.records)

    # -- views ----------------------------------------------------------------------------
    def subset(self, records: Iterable[ImageRecord], name: str | None = None) -> "ImageSet":
        recs = list(records)
        extra = {r.id: self.extra_masks[r.id] for r in recs if r.id in self.extra_masks}
        return ImageSet(recs, name=name or self.name, root=self.root, extra_masks=extra)

    def filter(self, label: str | None = None, ids: Iterable[str] | None = None) -> "ImageSet":
        recs = self.records
        if label is not None:
            recs = [r for r in recs if r.label == label]
        if ids is not None:
            keep = set(ids)
            recs = [r for r in recs if r.id in keep]
        suffix = f"[{label}]" if label else ""
        return self.subset(recs, name=f"{self.name}{suffix}")

    def take(self, n: int, seed: int = 0, stratify: bool = True) -> "ImageSet":
        """A seeded random sample of ``n`` records, stratified by label (proportional)."""
        if n > len(self):
            raise NotEnoughImagesError(f"asked for {n} images but {self.name} has only {len(self)}", "lower --n")
        if n == len(self):
            return self
        rng = np.random.default_rng(seed)
        if not stratify or len(self.labels) <= 1:
            idx = sorted(rng.choice(len(self), size=n, replace=False).tolist())
            return self.subset([self.records[i] for i in idx])
        counts = self.counts()
        quotas = {l: int(np.floor(n * c / len(self))) for l, c in counts.items()}
        rest = n - sum(quotas.values())
        for l in sorted(counts, key=lambda l: -(n * counts[l] / len(self) - quotas[l]))[:rest]:
            quotas[l] += 1
        keep: set[str] = set()
        for l, q in quotas.items():
            pool = [r.id for r in self.records if r.label == l]
            keep.update(rng.choice(pool, size=q, replace=False).tolist())
        return self.filter(ids=keep)

    # -- pixels ---------------------------------------------------------------------------
    def load_image(self, rec: ImageRecord, size: int | tuple[int, int] | None = None) -> np.ndarray:
        """The gray image of ``rec`` (resized to ``size`` when given).

        Memoised per process like :meth:`load_mask` (keyed by path, file size, mtime and ``size``):
        one run decodes the same PNGs for each extractor and for the pixel metrics (MS-SSIM,
        memorization's NCC) of every subset; decoding was most of those metrics' time."""
        key = (str(rec.file), size, *_stat_key(rec.file))
        image = _IMAGE_MEMO.get(key)
        if image is None:
            image = resize_gray(read_gray(rec.file), size)
            _IMAGE_MEMO.put(key, image)
        return image.copy()  # callers may write into their image

    def load_mask(self, rec: ImageRecord, size: int | tuple[int, int] | None = None) -> np.ndarray | None:
        """The lesion mask (union of all mask files of the record), or None when the record has none.

        Memoised per process (keyed by the files' paths, sizes and mtimes): planning a mask-conditioned
        run reads each conditioning mask twice per generator, and a warm rerun was mostly that."""
        if rec.mask_file is None:
            return None
        extras = tuple(self.extra_masks.get(rec.id, ()))
        key = (str(rec.file), size) + tuple((str(f), *_stat_key(f)) for f in (rec.mask_file, *extras))
        mask = _MASK_MEMO.get(key)
        if mask is None:
            shape = Image.open(rec.file).size[::-1]
            mask = read_mask(rec.mask_file, shape)
            for extra in extras:
                mask = mask | read_mask(extra, shape)
            mask = resize_mask(mask, size)
            _MASK_MEMO.put(key, mask)
        return mask.copy()  # callers may draw on their mask

    def validate(self, progress: bool = False) -> None:
        """Decode every image and mask once; raises :class:`InputError` on the first bad one."""
        for rec in self.records:
            img = read_gray(rec.file)
            if rec.mask_file is not None:
                read_mask(rec.mask_file, img.shape)
                for extra in self.extra_masks.get(rec.id, ()):
                    read_mask(extra, img.shape)

    # -- identity -------------------------------------------------------------------------
    def content_hash(self) -> str:
        """sha256 over (id, label, image bytes, mask bytes) of every record, in id order.

        Cache keys use this, never names: renaming a folder keeps the hash, changing one pixel
        changes it.
        """
        if self._hash is None:
            h = hashlib.sha256()
            for rec in sorted(self.records, key=lambda r: r.id):
                h.update(f"{rec.id}\0{rec.label}\0".encode())
                h.update(sha256_file(rec.file).encode())
                masks = ([rec.mask_file] if rec.mask_file else []) + list(self.extra_masks.get(rec.id, ()))
                for m in masks:
                    h.update(sha256_file(m).encode())
                h.update(b"\n")
            self._hash = h.hexdigest()
        return self._hash

    # -- manifest I/O ---------------------------------------------------------------------
    @classmethod
    def read(cls, path: str | Path, name: str | None = None) -> "ImageSet":
        """Read a folder written in the ImageSet format (a ``manifest.csv`` beside the images)."""
        root = Path(path)
        manifest = root / MANIFEST
        if not manifest.is_file():
            raise InputError(f"{root} has no {MANIFEST}", "point to an ImageSet folder, or use usbench.datasets.load()")
        records, extra_masks = _read_manifest(manifest, root)
        if not records:
            raise InputError(f"{manifest} has no rows", "an ImageSet needs at least one image")
        return cls(records, name=name or root.name, root=root.resolve(), extra_masks=extra_masks)

    def write_manifest(self, root: Path, filename: str = MANIFEST) -> None:
        """Write ``manifest.csv`` for these records, paths relative to ``root`` (atomically)."""
        atomic_write_text(Path(root) / filename, _manifest_text(self.records, self.extra_masks, Path(root)))


def _manifest_seed(value: str, manifest: Path, line: int) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{manifest} line {line}: seed {value!r} is not a whole number",
                         "write an integer seed or leave the seed column empty") from None


def _read_manifest(manifest: Path, root: Path) -> tuple[list[ImageRecord], dict[str, tuple[Path, ...]]]:
    try:
        return _parse_manifest(manifest, root)
    except UnicodeDecodeError as exc:
        raise InputError(f"{manifest} is not UTF-8 (byte {exc.start}: {exc.reason})",
                         "re-save it as UTF-8, e.g. iconv -f latin1 -t utf-8") from None
    except csv.Error as exc:
        raise InputError(f"{manifest} is not a valid CSV file ({exc})", "fix the quoting, or rewrite it with a CSV writer") from None


def _parse_manifest(manifest: Path, root: Path) -> tuple[list[ImageRecord], dict[str, tuple[Path, ...]]]:
    with open(manifest, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"id", "file"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(
                f"{manifest} lacks the column(s) {', '.join(sorted(missing))}",
                f"the columns are {','.join(MANIFEST_COLUMNS)}",
            )
        records = []
        extra_masks: dict[str, tuple[Path, ...]] = {}
        for row in reader:
            mask_field = (row.get("mask_file") or "").strip()
            mask_files = [root / m for m in mask_field.split(";") if m]
            seed = (row.get("seed") or "").strip()
            rec = ImageRecord(
                id=row["id"],
                file=(root / row["file"]).resolve(),
                label=(row.get("label") or "").strip(),
                mask_file=mask_files[0].resolve() if mask_files else None,
                prompt=row.get("prompt") or "",
                seed=_manifest_seed(seed, manifest, reader.line_num),
                source=row.get("source") or "",
                group=row.get("group") or "",
            )
            if len(mask_files) > 1:
                extra_masks[rec.id] = tuple(m.resolve() for m in mask_files[1:])
            records.append(rec)
    return records, extra_masks


def _manifest_text(records: Sequence[ImageRecord], extra_masks: dict, root: Path) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MANIFEST_COLUMNS + ("group",))
    for r in records:
        masks = ([r.mask_file] if r.mask_file else []) + list(extra_masks.get(r.id, ()))
        w.writerow([
            r.id, os.path.relpath(r.file, root), ";".join(os.path.relpath(m, root) for m in masks), r.label,
            r.prompt, "" if r.seed is None else r.seed, r.source, r.group,
        ])
    return buf.getvalue()


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file via a temp file and rename, so a crash never leaves half a file."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Atomic, with the user's umask; a full or read-only disk is one line (see usbench.outputs)."""
    from usbench.outputs import atomic_write_bytes as write

    write(path, data)


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and prove it writable; raise :class:`OutputError` otherwise."""
    from usbench.outputs import make_dirs, write_error

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path} is a file, not a folder", "choose a folder name for --out")
    try:
        make_dirs(path)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".usbench-probe-", delete=True)
        probe.close()
    except OutputError:
        raise
    except OSError as exc:
        raise write_error(exc, path) from None
    return path


class _Memo:
    """A dict of arrays bounded by their total size; the oldest entries go first."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.items: dict[tuple, np.ndarray] = {}
        self.bytes = 0

    def get(self, key: tuple) -> np.ndarray | None:
        return self.items.get(key)

    def put(self, key: tuple, value: np.ndarray) -> None:
        if key in self.items:
            return
        self.items[key] = value
        self.bytes += value.nbytes
        while self.bytes > self.max_bytes and len(self.items) > 1:
            self.bytes -= self.items.pop(next(iter(self.items))).nbytes


MASK_MEMO_BYTES = 64 << 20  # masks kept by ImageSet.load_mask (1000 at 256 px)
IMAGE_MEMO_BYTES = 256 << 20  # images kept by ImageSet.load_image (4000 at 256 px: a built-in run's)
_MASK_MEMO = _Memo(MASK_MEMO_BYTES)
_IMAGE_MEMO = _Memo(IMAGE_MEMO_BYTES)


def _stat_key(path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


class ImageSetWriter:
    """Write an ImageSet folder incrementally and resumably.

    Images go to ``<out>/images/<id>.png`` and masks to ``masks/<id>.png``, each written
    atomically and the mask before its image, so an image file on disk is always complete and
    has its mask. An interrupted writer resumes by :meth:`adopt`-ing the ids in
    :meth:`done_ids`. The manifest is written last, by :meth:`close`: a folder with a
    ``manifest.csv`` is complete.
    """

    def __init__(self, out: str | Path, source: str = ""):
        self.root = ensure_writable_dir(Path(out))
        (self.root / "images").mkdir(exist_ok=True)
        self.source = source
        self.records: dict[str, ImageRecord] = {}

    def image_path(self, id: str) -> Path:
        return self.root / "images" / f"{id}.png"

    def mask_path(self, id: str) -> Path:
        return self.root / "masks" / f"{id}.png"

    def done_ids(self) -> set[str]:
        """Ids whose image is already on disk (from an earlier, interrupted writer)."""
        return {p.stem for p in (self.root / "images").glob("*.png")}

    def add(
        self,
        id: str,
        image: np.ndarray,
        label: str = "",
        mask: np.ndarray | None = None,
        prompt: str = "",
        seed: int | None = None,
        source: str | None = None,
    ) -> ImageRecord:
        if image.dtype != np.uint8 or image.ndim != 2:
            raise ValueError(f"generators must return 2-D uint8 images, got {image.dtype} {image.shape}")
        return self.add_png(id, encode_png(image), label=label,
                            mask_png=None if mask is None else encode_png(mask.astype(bool)),
                            prompt=prompt, seed=seed, source=source)

    def add_png(self, id: str, image_png: bytes, label: str = "", mask_png: bytes | None = None, prompt: str = "",
                seed: int | None = None, source: str | None = None) -> ImageRecord:
        """:meth:`add` for images already encoded by :func:`encode_png` (e.g. in worker processes)."""
        if mask_png is not None:
            (self.root / "masks").mkdir(exist_ok=True)
            atomic_write_bytes(self.mask_path(id), mask_png)
        atomic_write_bytes(self.image_path(id), image_png)
        return self.adopt(id, label=label, has_mask=mask_png is not None, prompt=prompt, seed=seed, source=source)

    def adopt(self, id: str, label: str = "", has_mask: bool = False, prompt: str = "", seed: int | None = None,
              source: str | None = None) -> ImageRecord:
        """Record an image already on disk without writing it again."""
        rec = ImageRecord(
            id=id, file=self.image_path(id).resolve(), label=label,
            mask_file=self.mask_path(id).resolve() if has_mask else None,
            prompt=prompt, seed=seed, source=self.source if source is None else source,
        )
        self.records[id] = rec
        return rec

    def close(self, order: Sequence[str] | None = None) -> ImageSet:
        recs = list(self.records.values())
        if order is not None:
            pos = {i: k for k, i in enumerate(order)}
            recs.sort(key=lambda r: pos.get(r.id, len(pos)))
        s = ImageSet(recs, name=self.root.name, root=self.root.resolve())
        s.write_manifest(self.root)
        return s

    def __enter__(self) -> "ImageSetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()


def encode_png(arr: np.ndarray) -> bytes:
    """The 8-bit grayscale PNG of ``arr`` (a boolean mask becomes 0/255), as every usbench set stores it."""
    buf = io.BytesIO()
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    Image.fromarray(arr, mode="L").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


__all__ = [
    "IMAGE_SUFFIXES", "MANIFEST", "MANIFEST_COLUMNS", "ImageRecord", "ImageSet", "ImageSetWriter",
    "atomic_write_bytes", "atomic_write_text", "encode_png", "ensure_writable_dir", "read_gray",
    "image_shape", "read_mask", "resize_gray", "resize_mask", "sha256_file", "size_label", "size_token", "write_png",
]
