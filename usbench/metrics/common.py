"""Helpers shared by the built-in metrics: getting feature pairs, provenance, building results."""

from __future__ import annotations

from typing import Any

import numpy as np

from usbench.errors import ConfigError
from usbench.metrics.base import MetricContext, MetricResult, require_images
from usbench.metrics.frechet import check_features


def features_of(ctx: MetricContext, which: str, extractor: str, metric: str) -> np.ndarray:
    """(n, d) float64 features of ``ctx.generated``/``ctx.reference``/``ctx.train``, checked finite."""
    if ctx.features is None:
        raise ConfigError(f"{metric} needs features from the {extractor} extractor but the context has no feature store",
                          "run it through usbench evaluate/run or pass features=FeatureStore(...)")
    imageset = getattr(ctx, which)
    return check_features(ctx.features(imageset, extractor), f"{extractor} features of {imageset.name}")


def feature_pair(ctx: MetricContext, extractor: str, metric: str, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    """Generated and reference features after checking both sets have at least ``minimum`` images."""
    require_images(metric, len(ctx.generated), minimum, "generated")
    require_images(metric, len(ctx.reference), minimum, "reference")
    gen = features_of(ctx, "generated", extractor, metric)
    ref = features_of(ctx, "reference", extractor, metric)
    if gen.shape[1] != ref.shape[1]:
        raise ConfigError(f"{metric}: feature dimensions differ ({gen.shape[1]} vs {ref.shape[1]})", "use one extractor for both sets")
    return gen, ref


def provenance(ctx: MetricContext, extractor: str | None) -> dict[str, Any]:
    """What the extractor says about itself (weights sha256, preprocessing), when the store can tell."""
    if extractor is None:
        return {}
    get = getattr(ctx.features, "extractor", None)
    if get is None:
        return {"extractor": extractor}
    ext = get(extractor)
    info = ext.provenance() if hasattr(ext, "provenance") else {"extractor": extractor}
    info.setdefault("fingerprint", ext.fingerprint())
    return info


def make_result(name: str, value: float, ci: tuple[float, float], ctx: MetricContext, higher_is_better: bool,
                details: dict[str, Any], n_generated: int | None = None, n_reference: int | None = None) -> MetricResult:
    details = {"seed": ctx.seed, "n_bootstrap": ctx.n_bootstrap, **details}
    return MetricResult(name=name, value=float(value), ci_low=float(ci[0]), ci_high=float(ci[1]),
                        n_generated=len(ctx.generated) if n_generated is None else n_generated,
                        n_reference=len(ctx.reference) if n_reference is None else n_reference,
                        higher_is_better=higher_is_better, ci_level=ctx.ci_level, details=details)
