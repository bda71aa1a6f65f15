"""Versions of the packages behind a result, recorded in run.json, model cards and segmenter cards."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

RUN_PACKAGES = ("numpy", "torch", "torchvision", "torch-fidelity", "torchmetrics", "diffusers", "monai", "scikit-image")


def versions(packages: tuple[str, ...] = RUN_PACKAGES) -> dict[str, str]:
    """``{"usbench": ..., "python": ..., package: version}``; a package that is not installed maps to ""."""
    from usbench import __version__

    out = {"usbench": __version__, "python": platform.python_version()}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = ""
    return out
