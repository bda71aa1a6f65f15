"""Real datasets read into ImageSets, and the built-in phantom reference set.

>>> from usbench.datasets import load            # doctest: +SKIP
>>> busi = load("Dataset_BUSI_with_GT")          # doctest: +SKIP
>>> busi.counts()                                # doctest: +SKIP
{'benign': 437, 'malignant': 210, 'normal': 133}
"""

from __future__ import annotations

from pathlib import Path

from usbench.datasets.readers import BuiltinDataset, DatasetReader, detect_layout
from usbench.errors import UnknownNameError
from usbench.imageset import ImageSet
from usbench.registry import Registry

# Layouts (DatasetReader) and named built-in sets (BuiltinDataset); plugins add theirs under the
# entry-point group ``usbench.datasets``.
DATASETS: Registry = Registry("dataset", "usbench.datasets")
for _name, _attr in (("imageset", "IMAGESET"), ("busi", "BUSI"), ("busbra", "BUSBRA"), ("udiat", "UDIAT"),
                     ("folder", "FOLDER"), ("phantom-busi", "PHANTOM_BUSI")):
    DATASETS.add_builtin(_name, f"usbench.datasets.readers:{_attr}")


def readers() -> list[DatasetReader]:
    """Every registered layout (a plugin that fails to import is left out; ``usbench doctor`` shows it)."""
    found = []
    for name in DATASETS.names():
        try:
            obj = DATASETS.get(name)
        except ImportError:
            continue
        if isinstance(obj, DatasetReader) or (hasattr(obj, "detect") and hasattr(obj, "read")):
            found.append(obj)
    return found


def load(source: str | Path, layout: str | None = None, image_size: int = 256, seed: int = 0, progress: bool = False) -> ImageSet:
    """Read a dataset folder (layout detected unless given) or build a built-in set by name."""
    if str(source) in DATASETS:
        builtin = DATASETS.get(str(source))
        if isinstance(builtin, BuiltinDataset) or hasattr(builtin, "build"):
            return builtin.build(image_size=image_size, seed=seed, progress=progress)
    layouts = readers()
    found, root = detect_layout(Path(source).expanduser(), layouts)
    if layout is not None:
        by_name = {r.name: r for r in layouts}
        if layout not in by_name:
            raise UnknownNameError(f"unknown dataset layout {layout!r}", f"known layouts: {', '.join(by_name)}")
        found = by_name[layout]
    return found.read(root)


def builtin_names() -> list[str]:
    """Names of the built-in sets (``phantom-busi``)."""
    return [n for n in DATASETS.names() if not isinstance(DATASETS.get(n), DatasetReader)]


__all__ = ["DATASETS", "BuiltinDataset", "DatasetReader", "builtin_names", "load", "readers"]
