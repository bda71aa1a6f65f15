"""Within-set diversity: mean pairwise MS-SSIM (weight-free) and mean pairwise LPIPS (AlexNet).

Pairs: ``max_pairs`` (200) distinct random pairs of generated images (all pairs when fewer), seeded.
The same statistic of the reference set is reported in the details as the target to compare
with (a generator can be "too diverse" as well as collapsed). Intervals: percentile bootstrap
over the pairs.

MS-SSIM is torchmetrics' ``multiscale_structural_similarity_index_measure`` in float32 (Gaussian window
σ = 1.5, 11 px, data range 255, the five Wang et al. weights). Five scales need images larger
than 160 px (torchmetrics requires height // 16 > 10); for smaller images the largest number
of scales s that torchmetrics accepts is used with the first s weights renormalised to sum 1
(256 px: 5 scales; 128 px: 4; 64 px: 3). The details record the scales used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from usbench.errors import InputError, WeightsError
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


def _gauss_1d(dtype):
    """torchmetrics' 1-D Gaussian window (11 taps, sigma 1.5); its 2-D window is this outer product."""
    import torch

    dist = torch.arange((1 - KERNEL) / 2, (1 + KERNEL) / 2, 1, dtype=dtype)
    g = torch.exp(-((dist / SIGMA) ** 2) / 2)
    return g / g.sum()


def _blur(x, g):
    """The Gaussian window as two 1-D passes ('valid' on an already padded input): 22 instead of 121 taps."""
    import torch.nn.functional as F

    return F.conv2d(F.conv2d(x, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))


def pairwise_msssim(images: np.ndarray, pairs: np.ndarray, batch: int = 32) -> np.ndarray:
    """MS-SSIM of each pair of (n, H, W) uint8 images, equal to torchmetrics'
    ``multiscale_structural_similarity_index_measure(data_range=255, normalize="relu")``.

    Same algorithm (reflect padding, Gaussian window, relu-normalised SSIM and contrast terms,
    2×2 average pooling between scales), computed for many pairs at once: the window means and
    second moments of each image are computed once per scale instead of once per pair, and the
    separable window is applied as two 1-D passes; float64 throughout (the parity test holds to
    1e-6 relative against torchmetrics).
    """
    import torch
    import torch.nn.functional as F

    betas = msssim_betas(min(images.shape[1:]))
    x = torch.from_numpy(images.astype(np.float64))[:, None]
    g = _gauss_1d(x.dtype)
    pad = (KERNEL - 1) // 2
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    pairs = torch.as_tensor(np.asarray(pairs, dtype=np.int64).reshape(-1, 2))
    terms = torch.empty(len(betas), len(pairs), dtype=x.dtype)
    with torch.no_grad():  # all threads: measured 279 s vs 208 s cold built-in run when pinned to one
        for scale in range(len(betas)):
            padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
            mu, ex2 = _blur(padded, g), _blur(padded * padded, g)  # per image, once
            for s in range(0, len(pairs), batch):
                i, j = pairs[s:s + batch, 0], pairs[s:s + batch, 1]
                exy = _blur(padded[i] * padded[j], g)
                mu_x, mu_y = mu[i], mu[j]
                var_x = torch.clamp(ex2[i] - mu_x**2, min=0.0)
                var_y = torch.clamp(ex2[j] - mu_y**2, min=0.0)
                upper = 2 * (exy - mu_x * mu_y) + c2
                lower = var_x + var_y + c2
                if scale == len(betas) - 1:  # the last scale contributes the full SSIM
                    ssim = ((2 * mu_x * mu_y + c1) * upper) / ((mu_x**2 + mu_y**2 + c1) * lower)
                    terms[scale, s:s + batch] = torch.relu(ssim.flatten(1).mean(1))
                else:  # the others the contrast-structure term, without the padded border
                    cs = (upper / lower)[..., pad:-pad, pad:-pad]
                    terms[scale, s:s + batch] = torch.relu(cs.flatten(1).mean(1))
            x = F.avg_pool2d(x, (2, 2))
    weights = torch.tensor(betas, dtype=terms.dtype).view(-1, 1)
    return torch.prod(terms**weights, dim=0).numpy().astype(np.float64)


def load_stack(imageset, size: int) -> np.ndarray:
    return np.stack([imageset.load_image(r, size) for r in imageset.records])


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
        imgs = load_stack(imageset, size)
        vals = pairwise_msssim(imgs, random_pairs(len(imgs), self.config.max_pairs, seed))
        return vals, len(msssim_betas(min(imgs.shape[1:])))

    def compute(self, ctx: MetricContext) -> MetricResult:
        require_images(self.name, len(ctx.generated), self.min_images, "generated")
        vals, scales = self._mean(ctx.generated, ctx.image_size, ctx.seed)
        lo, hi, _ = bootstrap(lambda v: float(v.mean()), [vals], B=ctx.n_bootstrap, seed=ctx.seed, level=ctx.ci_level)
        details: dict[str, Any] = {"pairs": len(vals), "scales": scales, "image_size": ctx.image_size,
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
    import lpips
    import torch
    import torchvision

    path, digest = resolve_weights(ALEXNET_WEIGHTS, weights or None, download=False)
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

        imgs = load_stack(imageset, size)
        pairs = random_pairs(len(imgs), self.config.max_pairs, seed)
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
