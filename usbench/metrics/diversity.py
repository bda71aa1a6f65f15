"""Within-set diversity: mean pairwise MS-SSIM (weight-free) and mean pairwise LPIPS (AlexNet).

Pairs: ``max_pairs`` (200) distinct random pairs of generated images (all pairs when fewer), seeded.
The same statistic of the reference set is reported in the details as the target to compare
with (a generator can be "too diverse" as well as collapsed). Intervals: percentile bootstrap
over the pairs.

MS-SSIM is torchmetrics' ``multiscale_structural_similarity_index_measure`` (Gaussian window
σ = 1.5, 11 px, data range 255, the five Wang et al. weights), recomputed here in float64 with
OpenCV's separable filter and each image's window moments shared by its pairs; it equals
torchmetrics (run in float64) to 1e-6 relative (tests/test_metrics_suite.py). Five scales need images larger
than 160 px (torchmetrics requires height // 16 > 10); for smaller images the largest number
of scales s that torchmetrics accepts is used with the first s weights renormalised to sum 1
(256 px: 5 scales; 128 px: 4; 64 px: 3). The details record the scales used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from usbench.common import usable_cores
from usbench.errors import InputError, WeightsError
from usbench.imageset import size_token
from usbench.generators.base import config_from_dict
from usbench.metrics.base import MetricContext, MetricResult, require_images
from usbench.metrics.bootstrap import bootstrap
from usbench.metrics.common import make_result
from usbench.weights import WeightsSpec, resolve_weights

MSSSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
KERNEL = 11
SIGMA = 1.5  # torchmetrics' default Gaussian window: 11 taps, sigma 1.5


def msssim_betas(size: int) -> tuple[float, ...]:
    """The MS-SSIM weights usable at image side ``size`` (see the module docstring)."""
    for s in range(5, 0, -1):
        div = max(1, s - 1) ** 2
        if size >= 2**s and size // div > KERNEL - 1:
            b = np.array(MSSSIM_BETAS[:s])
            return tuple((b / b.sum()).tolist()) if s < 5 else MSSSIM_BETAS
    raise InputError(f"images of {size} px are too small for MS-SSIM with an {KERNEL}-px window", "use images of at least 32 px")


def random_pairs(n: int, max_pairs: int, seed: int) -> np.ndarray:
    """Up to ``max_pairs`` distinct unordered pairs (i < j) of range(n), all of them when fewer."""
    total = n * (n - 1) // 2
    rng = np.random.default_rng(seed)
    if total <= max_pairs:
        i, j = np.triu_indices(n, 1)
        return np.stack([i, j], 1)
    flat = rng.choice(total, size=max_pairs, replace=False)
    i, j = np.triu_indices(n, 1)
    return np.stack([i[flat], j[flat]], 1)


def _window() -> np.ndarray:
    """torchmetrics' 1-D Gaussian window (11 taps, sigma 1.5) in float64; its 2-D window is this outer product."""
    dist = np.arange((1 - KERNEL) / 2, (1 + KERNEL) / 2, 1.0)
    g = np.exp(-((dist / SIGMA) ** 2) / 2)
    return g / g.sum()


def _blur(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The Gaussian window over each (H, W) image of (n, H, W) float64, as two 1-D passes.

    OpenCV's ``BORDER_REFLECT_101`` is torch's ``reflect`` padding, so this equals torchmetrics'
    reflect-pad + 'valid' 2-D convolution (to ~1e-14). OpenCV's vectorised separable filter took
    half the CPU time of ``scipy.ndimage.correlate1d`` here and a tenth of float64
    ``torch.conv2d``, which has no oneDNN path in float64: it unfolds its input (im2col) into a
    fresh buffer on every call, and faulting those pages in was most of the issue's system time."""
    import cv2

    out = np.empty_like(x)
    for k in range(len(x)):
        cv2.sepFilter2D(x[k], cv2.CV_64F, g, g, dst=out[k], borderType=cv2.BORDER_REFLECT_101)
    return out


def _pool(x: np.ndarray) -> np.ndarray:
    """2×2 average pooling (odd sizes drop the last row/column), as ``F.avg_pool2d(x, (2, 2))``."""
    n, h, w = x.shape[0], x.shape[1] // 2, x.shape[2] // 2
    return x[:, :2 * h, :2 * w].reshape(n, h, 2, w, 2).mean(axis=(2, 4))


def _pair_groups(pairs: np.ndarray, max_images: int) -> list[np.ndarray]:
    """Consecutive runs of pair indices whose images number at most ``max_images`` (bounds memory:
    each group holds the moments of its own images only)."""
    groups, start, seen = [], 0, set()
    for k, (i, j) in enumerate(pairs):
        new = seen | {int(i), int(j)}
        if len(new) > max_images and k > start:
            groups.append(np.arange(start, k))
            start, new = k, {int(i), int(j)}
        seen = new
    if len(pairs):
        groups.append(np.arange(start, len(pairs)))
    return groups


def _pair_groups_by_locality(pairs: np.ndarray, max_images: int) -> list[np.ndarray]:
    """:func:`_pair_groups` over the pairs reordered so that pairs sharing images are neighbours
    (images numbered by reverse Cuthill–McKee on the pair graph, pairs sorted by those numbers).
    Each group computes the window moments of its own images; in random order an image's moments
    were computed in 1.8 groups on average (200 pairs of 300 images), in this order 1.15, and
    2.5 times fewer for a 51-image subset. The value of a pair does not depend on its group."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    if len(pairs) == 0:
        return []
    n = int(pairs.max()) + 1
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)).tocsr()
    rank = np.empty(n, np.int64)
    rank[reverse_cuthill_mckee(graph + graph.T, symmetric_mode=True)] = np.arange(n)
    r = rank[pairs]
    order = np.lexsort((r.max(1), r.min(1)))
    return [order[g] for g in _pair_groups(pairs[order], max_images)]


def _group_terms(x: np.ndarray, i: np.ndarray, j: np.ndarray, n_scales: int, batch: int) -> np.ndarray:
    """The (n_scales, n_pairs) relu'd contrast-structure terms (SSIM at the last scale) of the
    pairs (i, j) of the images x (n, H, W) float64."""
    g = _window()
    pad = (KERNEL - 1) // 2
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    terms = np.empty((n_scales, len(i)))
    for scale in range(n_scales):
        mu = _blur(x, g)  # window moments of each image, once per scale
        mu_sq = mu * mu
        var = np.maximum(_blur(x * x, g) - mu_sq, 0.0)
        for s in range(0, len(i), batch):
            a, b = i[s:s + batch], j[s:s + batch]
            mu_xy = mu[a] * mu[b]
            upper = 2 * (_blur(x[a] * x[b], g) - mu_xy) + c2
            lower = var[a] + var[b] + c2
            if scale == n_scales - 1:  # the last scale contributes the full SSIM
                ssim = ((2 * mu_xy + c1) * upper) / ((mu_sq[a] + mu_sq[b] + c1) * lower)
                terms[scale, s:s + batch] = ssim.reshape(len(a), -1).mean(1)
            else:  # the others the contrast-structure term, without the padded border
                terms[scale, s:s + batch] = (upper / lower)[:, pad:-pad, pad:-pad].reshape(len(a), -1).mean(1)
        x = _pool(x)
    return np.maximum(terms, 0.0)


GROUP_PIXELS = 2 << 20  # per array of a group's image moments: 16 MiB of float64 (32 images of 256 px)
BATCH_PIXELS = 1 << 19  # per array of a batch of pairs: 4 MiB (8 pairs of 256 px)


def pairwise_msssim(images: np.ndarray, pairs: np.ndarray, workers: int | None = None) -> np.ndarray:
    """MS-SSIM of each pair of (n, H, W) uint8 images, equal to torchmetrics'
    ``multiscale_structural_similarity_index_measure(data_range=255, normalize="relu")``.

    Same algorithm (reflect padding, Gaussian window, relu-normalised SSIM and contrast terms,
    2×2 average pooling between scales), computed for many pairs at once: the window means and
    second moments of each image are computed once per scale (per group of pairs whose images
    fit in ``GROUP_PIXELS``) instead of once per pair, and the separable window is applied as two
    1-D passes; float64 throughout (the parity test holds to 1e-6 relative against
    torchmetrics). Memory: about 8 × 16 + 10 × 4 MiB per worker. The arrays stay well below glibc's
    largest mmap threshold (32 MiB), so freed memory is reused instead of being returned to
    the kernel and faulted in again (with 64-image groups that was 25 % system time).

    Threads: the groups run on ``workers`` threads (default: the usable cores), each filter call
    on one OpenCV thread: a whole image per thread instead of a thread pool woken for every small
    filter. The result does not depend on the number of workers.
    """
    from concurrent.futures import ThreadPoolExecutor

    import cv2

    betas = np.asarray(msssim_betas(min(images.shape[1:])))
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    pixels = images.shape[1] * images.shape[2]
    max_images, batch = max(2, GROUP_PIXELS // pixels), max(1, BATCH_PIXELS // pixels)
    terms = np.empty((len(betas), len(pairs)))

    def group_terms(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        used, local = np.unique(pairs[group], return_inverse=True)
        local = local.reshape(-1, 2)
        return group, _group_terms(images[used].astype(np.float64), local[:, 0], local[:, 1], len(betas), batch)

    groups = _pair_groups_by_locality(pairs, max_images)
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with ThreadPoolExecutor(max(1, min(workers or usable_cores(), len(groups) or 1))) as pool:
            for group, t in pool.map(group_terms, groups):
                terms[:, group] = t
    finally:
        cv2.setNumThreads(before)
    return np.prod(terms ** betas[:, None], axis=0)


_PAIR_VALUES: dict[tuple, tuple[np.ndarray, int]] = {}  # (content hash, size, seed, max_pairs) -> pair values


@dataclass
class MsssimConfig:
    max_pairs: int = 200


class MsssimDiversity:
    """Mean pairwise MS-SSIM within the generated set (lower = more diverse)."""

    name: ClassVar[str] = "ms-ssim-diversity"
    higher_is_better: ClassVar[bool] = False
    extractor = None
    needs: ClassVar[frozenset[str]] = frozenset({"images"})
    min_images: ClassVar[int] = 2

    def __init__(self, config: MsssimConfig):
        self.config = config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "MsssimDiversity":
        return cls(config_from_dict(MsssimConfig, dict(config or {}), f"metric {cls.name}"))

    def _mean(self, imageset, size: int, seed: int) -> tuple[np.ndarray, int]:
        """The pair values of ``imageset``, reading only the images the pairs use (uint8). Memoised by
        the set's content: the reference's value is the same for every generator of a run."""
        key = (imageset.content_hash(), size, seed, self.config.max_pairs)
        if key not in _PAIR_VALUES:
            pairs = random_pairs(len(imageset), self.config.max_pairs, seed)
            used = np.unique(pairs)
            imgs = np.stack([imageset.load_image(imageset.records[i], size) for i in used])
            vals = pairwise_msssim(imgs, np.searchsorted(used, pairs))
            _PAIR_VALUES[key] = (vals, len(msssim_betas(min(imgs.shape[1:]))))
        vals, scales = _PAIR_VALUES[key]
        return vals.copy(), scales

    def compute(self, ctx: MetricContext) -> MetricResult:
        require_images(self.name, len(ctx.generated), self.min_images, "generated")
        vals, scales = self._mean(ctx.generated, ctx.image_size, ctx.seed)
        lo, hi, _ = bootstrap(lambda v: float(v.mean()), [vals], B=ctx.n_bootstrap, seed=ctx.seed, level=ctx.ci_level)
        details: dict[str, Any] = {"pairs": len(vals), "scales": scales, "image_size": size_token(ctx.image_size),
                                   "interval": "bootstrap over pairs"}
        if len(ctx.reference) >= 2:
            ref_vals, _ = self._mean(ctx.reference, ctx.image_size, ctx.seed)
            details["reference_value"] = float(ref_vals.mean())
        return make_result(self.name, float(vals.mean()), (lo, hi), ctx, self.higher_is_better, details)


ALEXNET_WEIGHTS = WeightsSpec(
    name="AlexNet (torchvision ImageNet, for LPIPS)",
    filename="alexnet-owt-7be5be79.pth",
    sha256=None,  # torchvision pins the prefix 7be5be79 in the file name; checked below
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    flag="the weights option of lpips-diversity",
    env="USBENCH_ALEXNET_WEIGHTS",
)
ALEXNET_SHA256_PREFIX = "7be5be79"


@dataclass
class LpipsConfig:
    max_pairs: int = 200
    weights: str = ""
    batch_size: int = 32


def lpips_model(weights: str | None):
    """LPIPS v0.1 (AlexNet) with AlexNet from a local file only (lpips would download it)."""
    # weights first: a missing file is said before importing lpips and torchvision, which takes
    # seconds (the built-in run, without AlexNet, skips LPIPS)
    path, digest = resolve_weights(ALEXNET_WEIGHTS, weights or None, download=False)
    import lpips
    import torch
    import torchvision

    if path.name == ALEXNET_WEIGHTS.filename and not digest.startswith(ALEXNET_SHA256_PREFIX):
        raise WeightsError(f"{path} has sha256 {digest[:16]}… but {ALEXNET_WEIGHTS.filename} must start with {ALEXNET_SHA256_PREFIX}",
                           "delete the file and put the right one there")
    tv = torchvision.models.alexnet()
    tv.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    for sl in (model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4, model.net.slice5):
        for key, module in sl._modules.items():
            module.load_state_dict(tv.features[int(key)].state_dict())
    return model.eval(), digest


class LpipsDiversity:
    """Mean pairwise LPIPS (AlexNet) within the generated set (higher = more diverse)."""

    name: ClassVar[str] = "lpips-diversity"
    higher_is_better: ClassVar[bool] = True
    extractor = None
    needs: ClassVar[frozenset[str]] = frozenset({"images", "weights"})
    min_images: ClassVar[int] = 2

    def __init__(self, config: LpipsConfig):
        self.config = config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "LpipsDiversity":
        return cls(config_from_dict(LpipsConfig, dict(config or {}), f"metric {cls.name}"))

    def pair_values(self, model, imageset, size: int, seed: int) -> np.ndarray:
        import torch

        pairs = random_pairs(len(imageset), self.config.max_pairs, seed)
        used = np.unique(pairs)  # only the images the pairs use are read
        imgs = np.stack([imageset.load_image(imageset.records[i], size) for i in used])
        pairs = np.searchsorted(used, pairs)
        t = torch.from_numpy(imgs).float().div(127.5).sub(1.0)[:, None].expand(-1, 3, -1, -1)
        out = []
        with torch.inference_mode():
            for s in range(0, len(pairs), self.config.batch_size):
                p = pairs[s:s + self.config.batch_size]
                out.append(model(t[p[:, 0]], t[p[:, 1]]).reshape(-1).double().numpy())
        return np.concatenate(out) if out else np.empty(0)

    def compute(self, ctx: MetricContext) -> MetricResult:
        require_images(self.name, len(ctx.generated), self.min_images, "generated")
        model, digest = lpips_model(self.config.weights or ctx.alexnet_weights)
        vals = self.pair_values(model, ctx.generated, ctx.image_size, ctx.seed)
        lo, hi, _ = bootstrap(lambda v: float(v.mean()), [vals], B=ctx.n_bootstrap, seed=ctx.seed, level=ctx.ci_level)
        details: dict[str, Any] = {"pairs": len(vals), "weights_sha256": digest, "net": "alex", "lpips": "v0.1",
                                   "interval": "bootstrap over pairs"}
        if len(ctx.reference) >= 2:
            details["reference_value"] = float(self.pair_values(model, ctx.reference, ctx.image_size, ctx.seed).mean())
        return make_result(self.name, float(vals.mean()), (lo, hi), ctx, self.higher_is_better, details)
