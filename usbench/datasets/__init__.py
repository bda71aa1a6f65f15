"""Real datasets read into ImageSets, and the built-in phantom reference set.

>>> from usbench.datasets import load            # doctest: +SKIP
>>> busi = load("Dataset_BUSI_with_GT")          # doctest: +SKIP
>>> busi.counts()                                # doctest: +SKIP
{'benign': 437, 'malignant': 210, 'normal': 133}
"""

from __future__ import annotations

from pathlib import Path

from usbench.datasets.readers import READERS, detect_layout
from usbench.errors import UnknownNameError
from usbench.imageset import ImageSet

BUILTIN = ("phantom-busi",)


def load(source: str | Path, layout: str | None = None, size: int = 256, seed: int = 0, progress: bool = False) -> ImageSet:
    """Read a dataset folder (layout detected unless given) or build a built-in set by name."""
    if str(source) in BUILTIN:
        from usbench.datasets.phantom import builtin_reference

        return builtin_reference(size=size, seed=seed, progress=progress)
    found, root = detect_layout(Path(source).expanduser())
    layout = layout or found
    if layout == "imageset":
        return ImageSet.read(root)
    if layout not in READERS:
        raise UnknownNameError(f"unknown dataset layout {layout!r}", f"known layouts: imageset, {', '.join(READERS)}")
    return READERS[layout](root)


__all__ = ["BUILTIN", "load"]
