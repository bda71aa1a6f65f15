"""The ``folder`` generator: images made elsewhere, read from a folder (optionally with a manifest).

It "generates" by handing out the folder's images in a fixed order, matched by label when the
folder has labels (a manifest, or BUSI-style label subfolders). It cannot honour masks: a
ControlNet run made elsewhere should be given as an ImageSet folder whose manifest names the
conditioning masks, and evaluated with ``usbench evaluate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from usbench.errors import ConfigError, NotEnoughImagesError
from usbench.generators.base import GenerationRequest, config_from_dict, fingerprint_of
from usbench.imageset import resize_gray


@dataclass
class FolderConfig:
    path: str = ""
    layout: str = ""  # detected when blank


class FolderGenerator:
    name = "folder"
    needs_weights = True  # needs the user's folder: not part of the built-in benchmark
    mask_conditioned = False

    def __init__(self, config: FolderConfig):
        if not config.path:
            raise ConfigError("the folder generator needs a path", "set [generator.folder] path = \"DIR\" or --generator folder:DIR")
        from usbench.datasets import load

        self.config = config
        self.images = load(Path(config.path).expanduser(), layout=config.layout or None)
        self._by_label: dict[str, list] = {}
        for rec in self.images.records:
            self._by_label.setdefault(rec.label, []).append(rec)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "FolderGenerator":
        return cls(config_from_dict(FolderConfig, config, "[generator.folder]"))

    def fingerprint(self) -> str:
        return fingerprint_of("folder", self.images.content_hash())

    def check_requests(self, requests: Sequence[GenerationRequest]) -> None:
        """Refuse, before anything is written, more requests of a label than the folder has images."""
        labelled = set(self._by_label) != {""}
        need: dict[str, int] = {}
        for req in requests:
            key = req.label if labelled else ""
            need[key] = need.get(key, 0) + 1
        for key, k in need.items():
            have = len(self._by_label.get(key, []))
            if k > have:
                raise NotEnoughImagesError(
                    f"folder {self.config.path} has {have} images{f' labelled {key}' if key else ''} but {k} are asked for",
                    "lower --n or add images",
                )

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[np.ndarray]:
        labelled = set(self._by_label) != {""}
        for req in requests:
            key = req.label if labelled else ""
            pool = self._by_label.get(key, [])
            i = req.index if labelled else req.position  # the i-th request of a label gets its i-th image
            if i >= len(pool):
                raise NotEnoughImagesError(
                    f"folder {self.config.path} has {len(pool)} images{f' labelled {key}' if key else ''}, "
                    f"the benchmark asks for more", "lower --n or add images",
                )
            yield resize_gray(self.images.load_image(pool[i]), req.size)
