"""The metric protocol, the result every metric returns, and the context it reads from.

A metric is a class registered in :data:`usbench.metrics.METRICS` (or under the
``usbench.metrics`` entry-point group) with:

- ``name``: str; ``higher_is_better``: bool;
- ``extractor``: name of the feature extractor it needs, or None (pixel metrics);
- ``needs``: subset of {"features", "images", "masks", "train", "weights"};
- ``min_images``: the fewest generated/reference images it accepts;
- ``from_config(cls, config: dict)``;
- ``compute(self, ctx: MetricContext) -> MetricResult | list[MetricResult]`` (a family such as
  precision/recall/density/coverage returns one result per member).

A metric whose weights are missing raises :class:`~usbench.errors.WeightsError`; the runner then
skips it with that reason when the user did not name it, and fails when they did.

Metrics are computed overall and per label by the runner, which hands each call a context whose
sets are already restricted to that subset.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ClassVar, Protocol, runtime_checkable

import numpy as np

from usbench.errors import NotEnoughImagesError
from usbench.imageset import ImageSet


@dataclass
class MetricResult:
    """A metric value with its interval. ``ci_level`` is e.g. 0.95; NaN bounds mean no interval."""

    name: str
    value: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    n_generated: int = 0
    n_reference: int = 0
    higher_is_better: bool = False
    ci_level: float = 0.95
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("value", "ci_low", "ci_high"):
            d[k] = None if d[k] is None or (isinstance(d[k], float) and math.isnan(d[k])) else float(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MetricResult":
        d = dict(d)
        for k in ("value", "ci_low", "ci_high"):
            d[k] = math.nan if d.get(k) is None else d[k]
        return cls(**d)


FeatureFn = Callable[[ImageSet, str], np.ndarray]


@dataclass
class MetricContext:
    """What a metric may read. ``features(imageset, extractor)`` returns an (N, d) float64 matrix
    aligned with ``imageset.records`` (computed once and cached by the runner).

    ``heldout`` is the reference's test split (real images no generator was trained on);
    ``segmenter`` (a folder from ``usbench segmenter train``) and ``alexnet_weights`` (a file) are
    the run-wide ``--segmenter`` and ``--alexnet-weights``; a metric's own config wins over them."""

    generated: ImageSet
    reference: ImageSet
    train: ImageSet | None = None
    features: FeatureFn | None = None
    seed: int = 0
    n_bootstrap: int = 1000
    ci_level: float = 0.95
    image_size: "int | tuple[int, int]" = 256  # N: N×N; (h, w): the native size of sets that all have it
    progress: bool = False
    heldout: ImageSet | None = None
    segmenter: str | None = None
    alexnet_weights: str | None = None


@runtime_checkable
class Metric(Protocol):
    name: ClassVar[str]
    higher_is_better: ClassVar[bool]
    extractor: ClassVar[str | None]
    needs: ClassVar[frozenset[str]]
    min_images: ClassVar[int]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Metric": ...

    def compute(self, ctx: MetricContext) -> "MetricResult | list[MetricResult]": ...


def require_images(metric: str, n: int, minimum: int, which: str) -> None:
    """Raise a one-line error when a metric gets fewer images than it needs."""
    if n < minimum:
        raise NotEnoughImagesError(
            f"{metric} needs at least {minimum} {which} images, got {n}", "use a larger --n or a larger set"
        )
