"""Readers for real breast-ultrasound datasets, exactly as they are distributed.

Each reader turns a folder into an :class:`~usbench.imageset.ImageSet` whose records point into
the original files (nothing is copied):

- ``busi``: ``Dataset_BUSI_with_GT/{benign,malignant,normal}/benign (1).png`` with masks
  ``benign (1)_mask.png`` and further lesions ``benign (1)_mask_1.png`` … merged by union.
- ``busbra``: ``Images/bus_0001-l.png``, ``Masks/mask_0001-l.png`` and ``bus_data.csv``
  (columns ``ID``, ``Case`` = patient, ``Pathology``); both views of a patient share a group.
- ``udiat``: UDIAT Dataset B: ``original/000001.png``, ``GT/000001.png``, ``DatasetB.xlsx``
  (an image-number column and a type column: benign / malignant, "CANCER" counts as malignant).
- ``imageset``: a folder with ``manifest.csv`` (the ImageSet format).
- ``folder``: any folder of images, unlabelled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from usbench.errors import InputError
from usbench.imageset import IMAGE_SUFFIXES, MANIFEST, ImageRecord, ImageSet

BUSI_LABELS = ("benign", "malignant", "normal")
_BUSI_NAME = re.compile(r"^(?P<label>[a-z]+) \((?P<num>\d+)\)(?P<mask>_mask(?:_(?P<extra>\d+))?)?$")


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def busi_number(record_id: str) -> int | None:
    """The running number of a BUSI image id such as ``benign (12)`` (used by the paper split)."""
    m = _BUSI_NAME.match(record_id)
    return int(m.group("num")) if m else None


def read_busi(root: Path, labels: tuple[str, ...] | None = None) -> ImageSet:
    root = Path(root)
    wanted = labels or BUSI_LABELS
    missing = [l for l in wanted if not (root / l).is_dir()]
    if missing:
        raise InputError(
            f"{root} is in BUSI layout but lacks the label folder(s) {', '.join(missing)}",
            "restore them from the BUSI download (see docs/datasets.md), or give an ImageSet of the labels you have",
        )
    records: list[ImageRecord] = []
    extra: dict[str, tuple[Path, ...]] = {}
    for label in wanted:
        files = _images_in(root / label)
        masks: dict[str, list[tuple[int, Path]]] = {}
        images: dict[str, Path] = {}
        for f in files:
            m = _BUSI_NAME.match(f.stem)
            if not m:
                if "_mask" in f.stem:
                    base = f.stem.split("_mask")[0]
                    masks.setdefault(base, []).append((0, f))
                else:
                    images[f.stem] = f
                continue
            base = f"{m.group('label')} ({m.group('num')})"
            if m.group("mask"):
                masks.setdefault(base, []).append((int(m.group("extra") or -1), f))
            else:
                images[base] = f
        orphans = sorted(set(masks) - set(images))
        if orphans:
            raise InputError(
                f"{root / label} has mask(s) without an image, e.g. {masks[orphans[0]][0][1].name}",
                "restore the image or remove the mask",
            )
        for stem in sorted(images, key=lambda s: (busi_number(s) or 0, s)):
            mfiles = [p for _, p in sorted(masks.get(stem, []))]
            records.append(ImageRecord(
                id=stem, file=images[stem].resolve(), label=label,
                mask_file=mfiles[0].resolve() if mfiles else None, source="busi", group=stem,
            ))
            if len(mfiles) > 1:
                extra[stem] = tuple(p.resolve() for p in mfiles[1:])
    if not records:
        raise InputError(f"{root} has BUSI label folders but no images in them", "check the download is complete")
    return ImageSet(records, name="busi", root=root.resolve(), extra_masks=extra)


def read_busbra(root: Path) -> ImageSet:
    import pandas as pd

    root = Path(root)
    table_path = root / "bus_data.csv"
    try:
        table = pd.read_csv(table_path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{table_path} cannot be read as CSV ({str(exc).splitlines()[0]})",
                         "use the bus_data.csv distributed with BUS-BRA") from None
    cols = {c.lower(): c for c in table.columns}
    for need in ("id", "pathology"):
        if need not in cols:
            raise InputError(f"{table_path} lacks the column {need!r}", "use the bus_data.csv distributed with BUS-BRA")
    case_col = cols.get("case")
    records = []
    for _, row in table.iterrows():
        img_id = str(row[cols["id"]])
        file = root / "Images" / f"{img_id}.png"
        if not file.is_file():
            raise InputError(f"BUS-BRA image {file} listed in bus_data.csv is missing", "check the download is complete")
        mask = root / "Masks" / f"{img_id.replace('bus_', 'mask_', 1)}.png"
        records.append(ImageRecord(
            id=img_id, file=file.resolve(), label=str(row[cols["pathology"]]).strip().lower(),
            mask_file=mask.resolve() if mask.is_file() else None, source="busbra",
            group=str(row[case_col]) if case_col else img_id.rsplit("-", 1)[0],
        ))
    if not records:
        raise InputError(f"{table_path} has no rows", "use the bus_data.csv distributed with BUS-BRA")
    return ImageSet(records, name="busbra", root=root.resolve())


def _udiat_label(value: object) -> str:
    v = str(value).strip().lower()
    if v.startswith("benign") or v in {"b", "0"}:
        return "benign"
    if v.startswith("malign") or v in {"cancer", "m", "1"} or "carcinoma" in v:
        return "malignant"
    return v


def read_udiat(root: Path) -> ImageSet:
    import pandas as pd

    root = Path(root)
    table_path = next((p for p in (root / "DatasetB.xlsx", root / "DatasetB.csv") if p.is_file()), None)
    if table_path is None:
        raise InputError(f"{root} is in UDIAT layout but has no DatasetB.xlsx (the table of labels)",
                         "put the DatasetB.xlsx distributed with UDIAT Dataset B beside original/ and GT/")
    try:
        table = pd.read_excel(table_path) if table_path.suffix == ".xlsx" else pd.read_csv(table_path)
    except (ValueError, OSError, pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise InputError(f"{table_path} cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
                         "use the DatasetB.xlsx distributed with UDIAT Dataset B") from None
    cols = {c.strip().lower(): c for c in table.columns}
    img_col = cols.get("image") or table.columns[0]
    type_col = cols.get("type") or cols.get("class") or cols.get("label")
    if type_col is None:
        raise InputError(f"{table_path} has no Type column", "use the DatasetB.xlsx distributed with UDIAT Dataset B")
    records = []
    for _, row in table.iterrows():
        raw = str(row[img_col]).strip()
        stem = raw.split(".")[0]
        if stem.isdigit():
            stem = f"{int(stem):06d}"
        file = root / "original" / f"{stem}.png"
        if not file.is_file():
            raise InputError(f"UDIAT image {file} listed in {table_path.name} is missing", "check the download is complete")
        mask = root / "GT" / f"{stem}.png"
        records.append(ImageRecord(
            id=stem, file=file.resolve(), label=_udiat_label(row[type_col]),
            mask_file=mask.resolve() if mask.is_file() else None, source="udiat", group=stem,
        ))
    return ImageSet(records, name="udiat", root=root.resolve())


def read_folder(root: Path) -> ImageSet:
    root = Path(root)
    files = _images_in(root)
    if not files:
        raise InputError(f"{root} has no images", "put PNG/JPEG/BMP/TIFF files in it or point to another folder")
    records = [ImageRecord(id=f.stem, file=f.resolve(), source=root.name) for f in files]
    return ImageSet(records, name=root.name, root=root.resolve())


@dataclass(frozen=True)
class DatasetReader:
    """A dataset layout behind the ``usbench.datasets`` registry: ``detect(root)`` says whether a
    folder is in this layout, ``read(root)`` reads it into an ImageSet. Layouts are tried in
    ``priority`` order (lower first); ``folder`` (any folder of images) comes last.

    A new dataset (BUS-UCLM, BrEaST, ...) is one module defining one of these, registered by entry point::

        [project.entry-points."usbench.datasets"]
        bus-uclm = "my_package.busuclm:READER"
    """

    name: str
    detect: Callable[[Path], bool]
    read: Callable[[Path], ImageSet]
    priority: int = 50


@dataclass(frozen=True)
class BuiltinDataset:
    """A set built in code and named, not read from a folder (``phantom-busi``)."""

    name: str
    build: Callable[..., ImageSet]  # build(image_size=, seed=, progress=)


def _is_busi(root: Path) -> bool:
    return any((root / l).is_dir() for l in BUSI_LABELS)


def _is_busbra(root: Path) -> bool:
    return (root / "Images").is_dir() and (root / "bus_data.csv").is_file()


def _is_udiat(root: Path) -> bool:
    return (root / "original").is_dir() and (root / "GT").is_dir()


def _has_images(root: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in root.iterdir() if not p.name.startswith("."))


def _build_phantom_busi(image_size: int = 256, seed: int = 0, progress: bool = False) -> ImageSet:
    from usbench.datasets.phantom import builtin_reference

    return builtin_reference(size=image_size, seed=seed, progress=progress)


IMAGESET = DatasetReader("imageset", lambda root: (root / MANIFEST).is_file(), lambda root: ImageSet.read(root), priority=0)
BUSI = DatasetReader("busi", _is_busi, read_busi, priority=10)
BUSBRA = DatasetReader("busbra", _is_busbra, read_busbra, priority=20)
UDIAT = DatasetReader("udiat", _is_udiat, read_udiat, priority=30)
FOLDER = DatasetReader("folder", _has_images, read_folder, priority=1000)
PHANTOM_BUSI = BuiltinDataset("phantom-busi", _build_phantom_busi)


def detect_layout(root: Path, readers: Iterable[DatasetReader]) -> tuple[DatasetReader, Path]:
    """The reader of a folder and the folder that holds the data, trying ``readers`` in priority order.

    A folder with a single subfolder is looked into (the BUSI zip unpacks into
    ``Dataset_BUSI_with_GT/``). Raises :class:`InputError` when no layout fits.
    """
    readers = sorted(readers, key=lambda r: (r.priority, r.name))
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root} does not exist", "check the path")
    if not root.is_dir():
        raise InputError(f"{root} is not a folder", "point to the dataset folder, not a file")
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    if not entries:
        raise InputError(f"{root} is empty", "point to a folder that holds the dataset")
    for reader in readers:
        if reader.detect(root):
            return reader, root
    subdirs = [p for p in entries if p.is_dir()]
    if len(subdirs) == 1:
        return detect_layout(subdirs[0], readers)
    raise InputError(
        f"{root} is in none of the known layouts ({', '.join(r.name for r in readers)})",
        "see docs/datasets.md for the layouts",
    )
