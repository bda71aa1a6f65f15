"""The generator protocol: a backend turns requests (label, optional mask, seed) into images.

A backend is a class registered in :data:`usbench.generators.GENERATORS` (or under the
``usbench.generators`` entry-point group) with:

- ``name``: str, ``needs_weights``: bool (False = runs offline in the built-in benchmark),
  ``mask_conditioned``: bool (True = honours ``GenerationRequest.mask``);
- ``from_config(cls, config: dict) -> Generator``: build from a plain dict (TOML table);
  unknown keys raise :class:`~usbench.errors.ConfigError`;
- ``fingerprint(self) -> str``: a stable hash of everything that changes the pixels (config,
  weights sha256), used as the cache key of its images;
- ``generate(self, requests) -> Iterator[np.ndarray]``: one 2-D uint8 image per request, in
  order, at ``request.size``; same seed, same image.

Optionally ``check_requests(self, requests)``: raise a UsbenchError before anything is written
when the requests cannot be served (too many for a folder, labels the model was not trained on),
and ``min_batch_size``: int, the fewest requests per ``generate`` call worth making (a backend
that spreads one call over processes wants enough work per call to keep them busy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from usbench.common import config_from_dict, fingerprint_of  # noqa: F401  (re-exported: plugins import them from here)


@dataclass(frozen=True)
class GenerationRequest:
    id: str
    label: str
    seed: int
    size: int = 256
    mask: np.ndarray | None = None  # bool (size, size) when mask-conditioned
    prompt: str = ""
    index: int = 0  # rank of this request among the requests of its label (0, 1, ...)
    position: int = 0  # rank of this request in the whole list

    def __hash__(self) -> int:  # masks are arrays; hash by id
        return hash(self.id)


@runtime_checkable
class Generator(Protocol):
    name: ClassVar[str]
    needs_weights: ClassVar[bool]
    mask_conditioned: ClassVar[bool]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Generator": ...

    def fingerprint(self) -> str: ...

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[np.ndarray]: ...
