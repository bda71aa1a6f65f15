"""Distribution metrics on features: FID, FD∞, KID, precision/recall/density/coverage, FRD.

Each class is thin: features from the context → the functions of :mod:`frechet`, :mod:`kid`,
:mod:`prdc` → a :class:`MetricResult` with a seeded percentile bootstrap interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from usbench.errors import ConfigError
from usbench.generators.base import config_from_dict
from usbench.metrics.base import MetricContext, MetricResult, require_images
from usbench.metrics.common import feature_pair, make_result, provenance
from usbench.metrics.frechet import (bootstrap_frechet, check_features, fd_infinity, fd_infinity_interval,
                                     frechet_distance_from_features)
from usbench.metrics.kid import GRAM_LIMIT, kernel_grams, kid_bootstrap, kid_by_subsets, kid_from_grams
from usbench.metrics.prdc import prdc_subsampling, prdc_indicators
from usbench.metrics.transforms import CLIP, rank_gaussian

RADIOMIC_EXTRACTORS = ("radiomics", "frd-v1")


class _FeatureMetric:
    """Common plumbing: a dataclass config whose ``extractor`` key overrides the class default."""

    name: ClassVar[str]
    higher_is_better: ClassVar[bool] = False
    needs: ClassVar[frozenset[str]] = frozenset({"features"})
    min_images: ClassVar[int] = 2
    Config: ClassVar[type]

    def __init__(self, config: Any):
        self.config = config
        self.extractor = config.extractor

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "_FeatureMetric":
        cfg = config_from_dict(cls.Config, dict(config or {}), f"metric {cls.name}")
        if getattr(cfg, "normalize", "auto") not in ("auto", "rank-gaussian", "reference", "none"):
            raise ConfigError(f"metric {cls.name}: normalize must be auto, rank-gaussian, reference or none, got {cfg.normalize!r}",
                              "radiomic features need rank-gaussian (their scales differ by orders of magnitude)")
        return cls(cfg)

    def features(self, ctx: MetricContext, minimum: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Generated and reference features, transformed against the reference when asked
        (``normalize = "auto"``: rank-Gaussian for radiomic features, whose scales span ten
        decades and whose tails dominate kernels; see :mod:`usbench.metrics.transforms`)."""
        gen, ref = feature_pair(ctx, self.extractor, self.name, minimum)
        mode = getattr(self.config, "normalize", "none")
        if mode == "auto":
            mode = "rank-gaussian" if self.extractor in RADIOMIC_EXTRACTORS else "none"
        if mode == "rank-gaussian":
            (ref, gen), dropped = rank_gaussian(ref, gen)
            return gen, ref, {"normalize": f"rank-Gaussian against the reference, clipped at ±{CLIP:g}",
                              "features_dropped": dropped}
        if mode == "reference":
            gen, ref, dropped = frd_normalize(gen, ref)
            return gen, ref, {"normalize": "z-score with the reference mean/std", "features_dropped": dropped}
        return gen, ref, {}


@dataclass
class _FeatureConfig:
    """What every feature-based metric is configured with."""

    extractor: str = "inception"
    normalize: str = "auto"  # rank-gaussian | reference (z-score) | none; auto = rank-gaussian for radiomic features


@dataclass
class FidConfig(_FeatureConfig):
    max_direct_bootstrap: int = 200  # resamples when neither the Gram route nor small d makes B cheap


class FID(_FeatureMetric):
    """Fréchet distance of Gaussians fitted to generated and reference features (FID on Inception)."""

    name = "fid"
    extractor = "inception"  # default; the config key extractor overrides it per instance
    Config = FidConfig

    def compute(self, ctx: MetricContext) -> MetricResult:
        gen, ref, norm = self.features(ctx, self.min_images)
        n1, n2, d = len(gen), len(ref), gen.shape[1]
        value = frechet_distance_from_features(gen, ref)
        route = "batched" if d <= 64 else "gram" if min(n1, n2) < d and max(n1, n2) <= 4000 else "direct"
        B = ctx.n_bootstrap
        details: dict[str, Any] = {"route": "nuclear" if min(n1, n2) < d else "eigen", "dim": d, **norm,
                                   **provenance(ctx, self.extractor)}
        if route == "direct" and d > 256 and B > self.config.max_direct_bootstrap:
            B = self.config.max_direct_bootstrap
            details["bootstrap_note"] = f"B reduced to {B}: each resample needs a {d}x{d} eigendecomposition"
        lo, hi, _ = bootstrap_frechet(gen, ref, B=B, seed=ctx.seed, level=ctx.ci_level, route=route, estimate=value)
        details["n_bootstrap_used"] = B
        details["interval"] = ("basic bootstrap over images of the population d² (the large-N value), clipped at 0; "
                               "coverage measured in tests/test_metrics_coverage.py")
        return make_result(self.name, value, (lo, hi), ctx, self.higher_is_better, details)


@dataclass
class FdInfConfig(_FeatureConfig):
    n_points: int = 15
    max_resamples_large_d: int = 1000  # half-samples when d > 64 (each refits n_points FIDs; 1000 took 22 s at N=780, d=2048 on 2 cores)


class FDInfinity(_FeatureMetric):
    """FD∞ (Chong & Forsyth 2020): FID extrapolated to infinitely many generated images.

    Estimand: the FID of infinitely many generated images against this reference set (its
    statistics held fixed, as FD∞ holds them). Interval: half-sampling of the generated set
    (:func:`usbench.metrics.frechet.fd_infinity_interval`).
    """

    name = "fd-inf"
    extractor = "inception"  # default; the config key extractor overrides it per instance
    Config = FdInfConfig
    min_images = 10

    def compute(self, ctx: MetricContext) -> MetricResult:
        gen, ref, norm = self.features(ctx, self.min_images)
        n = len(gen)
        sizes = sorted(set(np.linspace(max(2, n // 5), n, self.config.n_points).astype(int).tolist()))
        value, info = fd_infinity(gen, ref, sizes=sizes, seed=ctx.seed)
        B = ctx.n_bootstrap
        if gen.shape[1] > 64 and B > self.config.max_resamples_large_d:
            B = self.config.max_resamples_large_d
            info["interval_note"] = f"{B} half-samples: each refits FD∞ ({len(sizes)} FIDs at d={gen.shape[1]})"
        lo, hi, _ = fd_infinity_interval(gen, ref, sizes, B=B, seed=ctx.seed, level=ctx.ci_level, estimate=value)
        details = {**info, **norm, "n_resamples_used": B, **provenance(ctx, self.extractor),
                   "interval": "half-sampling of the generated set (reference fixed), clipped at 0; estimand: "
                               "FID of infinitely many generated images against this reference"}
        return make_result(self.name, value, (lo, hi), ctx, self.higher_is_better, details)


@dataclass
class KidConfig(_FeatureConfig):
    subset_size: int = 1000
    n_subsets: int = 100
    degree: int = 3
    coef0: float = 1.0


class KID(_FeatureMetric):
    """Kernel Inception Distance: mean unbiased MMD² over random subsets (torch-fidelity's draw)."""

    name = "kid"
    extractor = "inception"  # default; the config key extractor overrides it per instance
    Config = KidConfig

    def compute(self, ctx: MetricContext) -> MetricResult:
        c = self.config
        gen, ref, norm = self.features(ctx, self.min_images)
        if max(len(gen), len(ref)) > GRAM_LIMIT:
            value, std, details = kid_by_subsets(gen, ref, c.n_subsets, c.subset_size, ctx.seed, c.degree, None, c.coef0)
            # the interval from a seeded sample of GRAM_LIMIT images per set (n×n kernels would not fit)
            rng = np.random.default_rng(ctx.seed)
            g = gen[np.sort(rng.choice(len(gen), min(len(gen), GRAM_LIMIT), replace=False))]
            r = ref[np.sort(rng.choice(len(ref), min(len(ref), GRAM_LIMIT), replace=False))]
            grams = kernel_grams(g, r, c.degree, None, c.coef0)
            details["interval_note"] = f"interval from a seeded sample of at most {GRAM_LIMIT} images per set"
        else:
            grams = kernel_grams(gen, ref, c.degree, None, c.coef0)
            value, std, details = kid_from_grams(*grams, n_subsets=c.n_subsets, subset_size=c.subset_size, seed=ctx.seed)
        lo, hi = kid_bootstrap(*grams, B=ctx.n_bootstrap, seed=ctx.seed, level=ctx.ci_level)
        details.update({"std_over_subsets": std, "kernel": f"poly(degree={c.degree}, gamma=1/d, coef0={c.coef0})",
                        "interval": "bootstrap over images of the all-pairs unbiased MMD² (resampling ties excluded)", **norm,
                        **provenance(ctx, self.extractor)})
        return make_result(self.name, value, (lo, hi), ctx, self.higher_is_better, details)


@dataclass
class PrdcConfig(_FeatureConfig):
    k: int = 5


class PRDC(_FeatureMetric):
    """Precision, recall, density, coverage (Naeem et al. 2020); four results."""

    name = "prdc"
    extractor = "inception"  # default; the config key extractor overrides it per instance
    Config = PrdcConfig
    higher_is_better = True
    min_images = 6

    def compute(self, ctx: MetricContext) -> list[MetricResult]:
        gen, ref, norm = self.features(ctx, self.config.k + 1)
        ind = prdc_indicators(ref, gen, self.config.k)
        estimates = {k: float(v.mean()) for k, v in ind.items()}
        cis = prdc_subsampling(ref, gen, self.config.k, B=ctx.n_bootstrap, seed=ctx.seed, level=ctx.ci_level,
                                 estimates=estimates)
        prov = provenance(ctx, self.extractor)
        out = []
        for member in ("precision", "recall", "density", "coverage"):
            details = {"k": self.config.k, "family": "prdc",
                       "interval": "subsampling 90% of both sets without replacement (delete-d jackknife; k-NN balls rebuilt); estimand: the "
                                   "expected value at these set sizes", **norm, **prov}
            out.append(make_result(member, float(ind[member].mean()), cis[member], ctx, True, details))
        return out


@dataclass
class FrdConfig:
    extractor: str = "frd-v1"
    region: str = "image"  # "image": whole image (cached features); "lesion": inside the lesion masks


_LESION_CACHE: dict[tuple, np.ndarray] = {}


def lesion_features(imageset, size: int | None) -> tuple[np.ndarray, list[int]]:
    """FRD v1 features inside each record's lesion mask (records without a non-empty mask are
    skipped); returns (features, indices of the records used). Memoised per file and size."""
    from usbench.metrics.frd_features import frd_v1_features

    rows, used = [], []
    for i, rec in enumerate(imageset.records):
        if rec.mask_file is None:
            continue
        key = (str(rec.file), str(rec.mask_file), tuple(imageset.extra_masks.get(rec.id, ())), size)
        if key not in _LESION_CACHE:
            mask = imageset.load_mask(rec, size)
            if mask is None or mask.sum() < 2:
                continue
            _LESION_CACHE[key] = frd_v1_features(imageset.load_image(rec, size), mask)
        rows.append(_LESION_CACHE[key])
        used.append(i)
    return (np.array(rows) if rows else np.empty((0, 0))), used


def frd_normalize(gen: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """FRD v1 normalisation as frd-score 1.0.1: features cast to float32, z-scored with the
    reference's mean and population std (``np.nanstd``, ddof 0) in float32; columns that are
    NaN or infinite afterwards in either set (a feature constant in the reference) are dropped.
    Returns (gen, ref, number dropped), float64."""
    g32, r32 = np.asarray(gen, np.float32), np.asarray(ref, np.float32)
    mean, std = np.nanmean(r32, axis=0), np.nanstd(r32, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        g, r = (g32 - mean) / std, (r32 - mean) / std
    keep = np.isfinite(g).all(0) & np.isfinite(r).all(0)
    return g[:, keep].astype(np.float64), r[:, keep].astype(np.float64), int((~keep).sum())


def frd_d2(gen: np.ndarray, ref: np.ndarray) -> float:
    """FRD v1's squared Fréchet distance d² of reference-z-scored features (FRD = ln d²).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> ref = rng.normal(size=(300, 5)); close = rng.normal(size=(300, 5)); far = rng.normal(2, 1, (300, 5))
        >>> bool(frd_d2(close, ref) < frd_d2(far, ref))
        True
    """
    g, r, _ = frd_normalize(gen, ref)
    return frechet_distance_from_features(g, r)


def _ln(x: float) -> float:
    """ln of a squared distance: −inf for 0 (an interval that reaches zero distance), no floor."""
    return math.log(x) if x > 0 else -math.inf


class FRD(_FeatureMetric):
    """Fréchet Radiomic Distance v1, frd-score 1.0.1's definition: FRD v1 radiomic features
    (:mod:`usbench.metrics.frd_features`), z-scored against the reference, FRD = ln d² of the
    Fréchet distance. Two results: ``frd`` (ln d²) and ``frd-d2`` (d²), one interval.

    The interval is the basic bootstrap of d² (clipped at 0), as for FID, the normalisation
    from the full reference held fixed; the ln interval is its image (its lower bound is −inf
    when the d² interval reaches 0). ``region = "lesion"``: features inside the lesion masks,
    over the records that have a non-empty mask (counts in the details)."""

    name = "frd"
    extractor = "frd-v1"  # default; the config key extractor overrides it per instance
    Config = FrdConfig
    min_images = 3

    def compute(self, ctx: MetricContext) -> list[MetricResult]:
        region: dict[str, Any] = {"region": self.config.region}
        if self.config.region == "lesion":
            gen, gi = lesion_features(ctx.generated, ctx.image_size)
            ref, ri = lesion_features(ctx.reference, ctx.image_size)
            require_images(f"{self.name} (region = lesion)", len(gi), self.min_images, "generated images with a lesion mask among")
            require_images(f"{self.name} (region = lesion)", len(ri), self.min_images, "reference images with a lesion mask among")
            gen = check_features(gen, f"lesion radiomics of {ctx.generated.name}")
            ref = check_features(ref, f"lesion radiomics of {ctx.reference.name}")
            region.update({"n_generated_with_mask": len(gi), "n_reference_with_mask": len(ri)})
        elif self.config.region == "image":
            gen, ref = feature_pair(ctx, self.extractor, self.name, self.min_images)
        else:
            raise ConfigError(f"metric frd: region must be image or lesion, got {self.config.region!r}", "fix the metric config")
        g, r, dropped = frd_normalize(gen, ref)
        d2 = frechet_distance_from_features(g, r)
        lo, hi, _ = bootstrap_frechet(g, r, B=ctx.n_bootstrap, seed=ctx.seed, level=ctx.ci_level, estimate=d2)
        details = {"frechet_distance": d2, "convention": "FRD v1 (frd-score 1.0.1): ln(d²), float32 features z-scored "
                                                          "with the reference mean and population std",
                   "features_used": g.shape[1], "features_dropped": dropped,
                   "interval": "basic bootstrap over images of the population d², clipped at 0, then ln; "
                               "normalisation from the full reference held fixed",
                   **region, **(provenance(ctx, self.extractor) if self.config.region == "image" else {})}
        ln_ci = (_ln(lo), _ln(hi)) if ctx.n_bootstrap > 0 else (math.nan, math.nan)
        return [make_result(self.name, _ln(d2), ln_ci, ctx, self.higher_is_better, details, n_generated=len(g), n_reference=len(r)),
                make_result("frd-d2", d2, (lo, hi), ctx, self.higher_is_better, details, n_generated=len(g), n_reference=len(r))]

    def __init__(self, config: FrdConfig):
        super().__init__(config)
        if config.region == "lesion":  # pixels and masks, no cached extractor features
            self.needs = frozenset({"images", "masks"})
            self.extractor = None
