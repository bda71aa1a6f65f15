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
from usbench.metrics.frechet import bootstrap_frechet, check_features, fd_infinity, frechet_distance_from_features
from usbench.metrics.kid import GRAM_LIMIT, kernel_grams, kid_bootstrap, kid_by_subsets, kid_from_grams
from usbench.metrics.prdc import prdc_bootstrap, prdc_indicators


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
        if getattr(cfg, "normalize", "auto") not in ("auto", "reference", "none"):
            raise ConfigError(f"metric {cls.name}: normalize must be auto, reference or none, got {cfg.normalize!r}",
                              "radiomic features need reference (their scales differ by orders of magnitude)")
        return cls(cfg)

    def features(self, ctx: MetricContext, minimum: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Generated and reference features, z-scored with the reference statistics when asked
        (``normalize = "auto"`` does it for radiomic features, whose scales span ten decades)."""
        gen, ref = feature_pair(ctx, self.extractor, self.name, minimum)
        mode = getattr(self.config, "normalize", "none")
        if mode == "auto":
            mode = "reference" if self.extractor == "radiomics" else "none"
        if mode == "reference":
            gen, ref, dropped = frd_normalize(gen, ref)
            return gen, ref, {"normalize": "z-score with the reference mean/std", "features_dropped": dropped}
        return gen, ref, {}


@dataclass
class _FeatureConfig:
    """What every feature-based metric is configured with."""

    extractor: str = "inception"
    normalize: str = "auto"  # "reference": z-score with the reference mean/std; auto = reference for radiomics


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
        route = "gram" if min(n1, n2) < d and max(n1, n2) <= 4000 else "direct"
        B = ctx.n_bootstrap
        details: dict[str, Any] = {"route": "nuclear" if min(n1, n2) < d else "eigen", "dim": d, **norm,
                                   **provenance(ctx, self.extractor)}
        if route == "direct" and d > 256 and B > self.config.max_direct_bootstrap:
            B = self.config.max_direct_bootstrap
            details["bootstrap_note"] = f"B reduced to {B}: each resample needs a {d}x{d} eigendecomposition"
        lo, hi, _ = bootstrap_frechet(gen, ref, B=B, seed=ctx.seed, level=ctx.ci_level, route=route, center=value)
        details["n_bootstrap_used"] = B
        details["interval"] = ("percentile bootstrap over images, re-centred on the estimate (duplicated images "
                               "inflate resampled Fréchet distances)")
        return make_result(self.name, value, (lo, hi), ctx, self.higher_is_better, details)


@dataclass
class FdInfConfig(_FeatureConfig):
    n_points: int = 15


class FDInfinity(_FeatureMetric):
    """FD∞ (Chong & Forsyth 2020): FID extrapolated to infinitely many generated images.

    The interval is the t-interval of the fitted intercept (the linear fit over subset sizes
    already resamples the generated set); a full bootstrap would cost n_points FIDs per resample.
    """

    name = "fd-inf"
    extractor = "inception"  # default; the config key extractor overrides it per instance
    Config = FdInfConfig
    min_images = 10

    def compute(self, ctx: MetricContext) -> MetricResult:
        from scipy import stats

        gen, ref, norm = self.features(ctx, self.min_images)
        n = len(gen)
        sizes = sorted(set(np.linspace(max(2, n // 5), n, self.config.n_points).astype(int).tolist()))
        value, info = fd_infinity(gen, ref, sizes=sizes, seed=ctx.seed)
        x = 1.0 / np.array(info["sizes"], dtype=np.float64)
        y = np.array(info["fid_at_sizes"])
        if len(x) > 2:
            fit = stats.linregress(x, y)
            t = stats.t.ppf(0.5 + ctx.ci_level / 2, len(x) - 2)
            ci = (value - t * fit.intercept_stderr, value + t * fit.intercept_stderr)
        else:
            ci = (math.nan, math.nan)
        details = {**info, **norm, "interval": "t-interval of the extrapolated intercept", **provenance(ctx, self.extractor)}
        return make_result(self.name, value, ci, ctx, self.higher_is_better, details)


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
        cis = prdc_bootstrap(ind, B=ctx.n_bootstrap, seed=ctx.seed, level=ctx.ci_level) if ctx.n_bootstrap > 0 else {
            k: (math.nan, math.nan) for k in ind}
        prov = provenance(ctx, self.extractor)
        out = []
        for member in ("precision", "recall", "density", "coverage"):
            details = {"k": self.config.k, "family": "prdc",
                       "interval": "bootstrap over images with the k-NN balls of the full sets fixed", **norm, **prov}
            out.append(make_result(member, float(ind[member].mean()), cis[member], ctx, True, details))
        return out


@dataclass
class FrdConfig:
    extractor: str = "radiomics"
    region: str = "image"  # "image": whole image (cached features); "lesion": inside the lesion masks
    bin_width: float = 8.0  # for region = "lesion" (the whole-image features use the extractor's own)


_LESION_CACHE: dict[tuple, np.ndarray] = {}


def lesion_features(imageset, size: int, bin_width: float) -> tuple[np.ndarray, list[int]]:
    """Radiomic features inside each record's lesion mask (records without a non-empty mask are
    skipped); returns (features, indices of the records used). Memoised per file and size."""
    from usbench.metrics.radiomics import radiomic_features

    rows, used = [], []
    for i, rec in enumerate(imageset.records):
        if rec.mask_file is None:
            continue
        key = (str(rec.file), str(rec.mask_file), tuple(imageset.extra_masks.get(rec.id, ())), size, bin_width)
        if key not in _LESION_CACHE:
            mask = imageset.load_mask(rec, size)
            if mask is None or mask.sum() < 2:
                continue
            _LESION_CACHE[key] = radiomic_features(imageset.load_image(rec, size), mask, bin_width)
        rows.append(_LESION_CACHE[key])
        used.append(i)
    return (np.array(rows) if rows else np.empty((0, 0))), used


def frd_normalize(gen: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """FRD v1 normalisation: z-score both sets with the reference (real) mean and std (ddof=0);
    features that are constant in the reference or non-finite after scaling are dropped.
    Returns (gen, ref, number dropped)."""
    mean, std = ref.mean(0), ref.std(0)
    keep = std > 0
    g, r = (gen[:, keep] - mean[keep]) / std[keep], (ref[:, keep] - mean[keep]) / std[keep]
    finite = np.isfinite(g).all(0) & np.isfinite(r).all(0)
    return g[:, finite], r[:, finite], int((~keep).sum() + (~finite).sum())


FRD_FLOOR = 1e-12


def frd_from_features(gen: np.ndarray, ref: np.ndarray) -> float:
    """FRD v1: natural log of the (squared) Fréchet distance of reference-z-scored radiomic features.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> ref = rng.normal(size=(300, 5)); close = rng.normal(size=(300, 5)); far = rng.normal(2, 1, (300, 5))
        >>> bool(frd_from_features(close, ref) < frd_from_features(far, ref))
        True
    """
    g, r, _ = frd_normalize(gen, ref)
    return float(np.log(max(frechet_distance_from_features(g, r), FRD_FLOOR)))


class FRD(_FeatureMetric):
    """Fréchet Radiomic Distance, FRD v1 convention of frd-score: z-score against the real set,
    then ln of the Fréchet distance d² (the log of the squared distance, not of its square root).

    ``region = "lesion"``: radiomic features inside the lesion masks instead of the whole image,
    over the records that have a non-empty mask (counts in the details)."""

    name = "frd"
    extractor = "radiomics"  # default; the config key extractor overrides it per instance
    Config = FrdConfig
    min_images = 3

    def compute(self, ctx: MetricContext) -> MetricResult:
        region: dict[str, Any] = {"region": self.config.region}
        if self.config.region == "lesion":
            gen, gi = lesion_features(ctx.generated, ctx.image_size, self.config.bin_width)
            ref, ri = lesion_features(ctx.reference, ctx.image_size, self.config.bin_width)
            require_images(f"{self.name} (region = lesion)", len(gi), self.min_images, "generated images with a lesion mask among")
            require_images(f"{self.name} (region = lesion)", len(ri), self.min_images, "reference images with a lesion mask among")
            gen = check_features(gen, f"lesion radiomics of {ctx.generated.name}")
            ref = check_features(ref, f"lesion radiomics of {ctx.reference.name}")
            region.update({"n_generated_with_mask": len(gi), "n_reference_with_mask": len(ri), "bin_width": self.config.bin_width})
        elif self.config.region == "image":
            gen, ref = feature_pair(ctx, self.extractor, self.name, self.min_images)
        else:
            raise ConfigError(f"metric frd: region must be image or lesion, got {self.config.region!r}", "fix the metric config")
        g, r, dropped = frd_normalize(gen, ref)
        fd = frechet_distance_from_features(g, r)
        value = math.log(max(fd, FRD_FLOOR))
        lo, hi, _ = bootstrap_frechet(g, r, B=ctx.n_bootstrap, seed=ctx.seed, level=ctx.ci_level, center=fd)
        ci = (math.log(max(lo, FRD_FLOOR)), math.log(max(hi, FRD_FLOOR))) if ctx.n_bootstrap > 0 else (math.nan, math.nan)
        if ctx.n_bootstrap > 0 and lo <= FRD_FLOOR:
            region["ci_low_note"] = (f"the interval of d² reaches {lo:.3g} <= 0: consistent with no distance at all; "
                                     f"ln is unbounded below, so the lower bound shown is ln of the floor {FRD_FLOOR:g}")
        details = {"frechet_distance": fd, "convention": "FRD v1: ln(d²), features z-scored with the reference mean/std",
                   "features_used": g.shape[1], "features_dropped": dropped,
                   "interval": "percentile bootstrap over images of d², re-centred on the estimate, then ln; normalisation from the full reference set held fixed",
                   **region, **(provenance(ctx, self.extractor) if self.config.region == "image" else {})}
        return make_result(self.name, value, ci, ctx, self.higher_is_better, details, n_generated=len(g), n_reference=len(r))

    def __init__(self, config: FrdConfig):
        super().__init__(config)
        if config.region == "lesion":  # pixels and masks, no cached extractor features
            self.needs = frozenset({"images", "masks"})
            self.extractor = None
