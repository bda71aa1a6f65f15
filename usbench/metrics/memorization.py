"""Memorization: is a generated image closer to a training image than real unseen images are?

For every generated image: its nearest training image in feature space (Euclidean distance of
features z-scored with the training set's mean/std) and in pixel space (normalised
cross-correlation, NCC, of ``pixel_size``-px images). The threshold is calibrated on held-out
real images (the reference set, which the generator never saw): τ = the ``quantile`` of their
nearest-training-image distances (for NCC the 1 − quantile of their best correlations). The
metric is the share of generated images beyond τ — ≈ ``quantile`` when the generator behaves
like unseen real data, larger when it copies.

AuthPct (Alaa et al. 2022, as in dgm-eval): a generated image is authentic when it is farther
from its nearest training image t than t is from its own nearest training neighbour; AuthPct is
the percentage of authentic generated images.

The details hold the ``top_pairs`` closest (generated id, train id, NCC similarity) pairs so a
report can show them side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from usbench.errors import ConfigError
from usbench.generators.base import config_from_dict
from usbench.metrics.base import MetricContext, MetricResult, require_images
from usbench.metrics.bootstrap import bootstrap
from usbench.metrics.common import features_of, make_result, provenance
from usbench.metrics.prdc import pairwise_distances


def zscore_with(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 0, std, 1.0)
    return [(x - mean) / std for x in (train, *others)]


def nearest(D: np.ndarray, largest: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(best value, index) along rows of a (n_query, n_train) matrix."""
    idx = D.argmax(1) if largest else D.argmin(1)
    return D[np.arange(len(D)), idx], idx


def ncc_matrix(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of every row of A with every row of B (flattened images)."""
    def unit(X):
        X = X.reshape(len(X), -1).astype(np.float64)
        X = X - X.mean(1, keepdims=True)
        n = np.linalg.norm(X, axis=1, keepdims=True)
        return X / np.where(n > 0, n, 1.0)

    return unit(A) @ unit(B).T


def auth_pct(train: np.ndarray, gen: np.ndarray) -> tuple[float, np.ndarray]:
    """AuthPct (percent of authentic generated rows) and the per-row indicators."""
    Dtt = pairwise_distances(train, train)
    np.fill_diagonal(Dtt, np.inf)
    train_nn = Dtt.min(1)
    dgen, idx = nearest(pairwise_distances(gen, train))
    authentic = (dgen > train_nn[idx]).astype(np.float64)
    return 100.0 * float(authentic.mean()), authentic


@dataclass
class MemorizationConfig:
    extractor: str = "inception"
    quantile: float = 0.05
    pixel_size: int = 64
    top_pairs: int = 8


class Memorization:
    """Share of generated images closer to a training image than held-out real images are.

    Returns three results: ``memorization`` (feature space), ``memorization-ncc`` (pixels) and
    ``authpct``.
    """

    name: ClassVar[str] = "memorization"
    extractor = "inception"  # default; the config key extractor overrides it
    higher_is_better: ClassVar[bool] = False
    needs: ClassVar[frozenset[str]] = frozenset({"features", "images", "train"})
    min_images: ClassVar[int] = 2

    def __init__(self, config: MemorizationConfig):
        if not 0 < config.quantile < 1:
            raise ConfigError(f"memorization quantile must be in (0, 1), got {config.quantile}", "use e.g. 0.05")
        self.config = config
        self.extractor = config.extractor

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Memorization":
        return cls(config_from_dict(MemorizationConfig, dict(config or {}), f"metric {cls.name}"))

    def compute(self, ctx: MetricContext) -> list[MetricResult]:
        c = self.config
        if ctx.train is None:
            raise ConfigError("memorization needs the training set of the generator", "pass --train FOLDER (or set train in the benchmark)")
        require_images(self.name, len(ctx.generated), self.min_images, "generated")
        require_images(self.name, len(ctx.reference), self.min_images, "reference (held-out real)")
        require_images(self.name, len(ctx.train), self.min_images, "training")
        gen = features_of(ctx, "generated", self.extractor, self.name)
        ref = features_of(ctx, "reference", self.extractor, self.name)
        train = features_of(ctx, "train", self.extractor, self.name)
        train_z, gen_z, ref_z = zscore_with(train, gen, ref)
        d_gen, _ = nearest(pairwise_distances(gen_z, train_z))
        d_ref, _ = nearest(pairwise_distances(ref_z, train_z))
        tau = float(np.quantile(d_ref, c.quantile))
        close_feat = (d_gen < tau).astype(np.float64)

        size = c.pixel_size
        pix = {name: np.stack([s.load_image(r, size) for r in s.records]) for name, s in
               (("gen", ctx.generated), ("ref", ctx.reference), ("train", ctx.train))}
        ncc_gen_all = ncc_matrix(pix["gen"], pix["train"])
        ncc_gen, ncc_idx = nearest(ncc_gen_all, largest=True)
        ncc_ref, _ = nearest(ncc_matrix(pix["ref"], pix["train"]), largest=True)
        tau_ncc = float(np.quantile(ncc_ref, 1 - c.quantile))
        close_pix = (ncc_gen > tau_ncc).astype(np.float64)

        auth, authentic = auth_pct(train_z, gen_z)
        order = np.argsort(-ncc_gen)[: c.top_pairs]
        pairs = [(ctx.generated.records[i].id, ctx.train.records[int(ncc_idx[i])].id, float(ncc_gen[i])) for i in order]

        def ci(v):
            lo, hi, _ = bootstrap(lambda a: float(a.mean()), [v], B=ctx.n_bootstrap, seed=ctx.seed, level=ctx.ci_level)
            return lo, hi

        common = {"quantile": c.quantile, "expected_if_not_copying": c.quantile, "closest_pairs": pairs,
                  "n_train": len(ctx.train), "interval": "bootstrap over generated images, threshold fixed"}
        prov = provenance(ctx, self.extractor)
        lo, hi = ci(authentic)
        return [
            make_result("memorization", float(close_feat.mean()), ci(close_feat), ctx, False,
                        {**common, "space": f"{self.extractor} features (z-scored with the training set)",
                         "threshold_distance": tau, **prov}),
            make_result("memorization-ncc", float(close_pix.mean()), ci(close_pix), ctx, False,
                        {**common, "space": f"pixels, NCC at {size} px", "threshold_ncc": tau_ncc,
                         "max_ncc": float(ncc_gen.max())}),
            make_result("authpct", auth, (100 * lo, 100 * hi), ctx, True,
                        {"definition": "percent of generated images farther from their nearest training image than "
                                       "that image is from its nearest training neighbour (Alaa et al. 2022)",
                         "n_train": len(ctx.train), **prov}),
        ]
