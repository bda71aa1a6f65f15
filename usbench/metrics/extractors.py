"""Deep feature extractors: torch-fidelity's Inception v3, DINOv2, any user ``torch.nn.Module``.

Each is a class with ``name``, ``from_config(options)``, ``fingerprint()`` (weights sha256 +
preprocessing) and ``extract(images, n) -> (n, d) float64`` for 2-D uint8 images (see
:mod:`usbench.metrics.features`). Weights are found by :func:`usbench.weights.resolve_weights`
only when first needed, so building an extractor never fails; fingerprinting or extracting
without weights raises :class:`~usbench.errors.WeightsError`.

Weights hash policy: a file found in a cache under the official file name must have the pinned
sha256. A file given explicitly (``weights`` option / ``--inception-weights``) is the user's
choice: its sha256 is recorded in the fingerprint and in every result (``weights_official``
says whether it is the pinned file), and is enforced only when the user also gives
``weights_sha256`` or the file carries the official file name.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from usbench.errors import ConfigError, InputError, WeightsError
from usbench.weights import WeightsSpec, resolve_weights

INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS = WeightsSpec(
    name="Inception v3 (torch-fidelity, TF 2015-12-05)",
    filename="weights-inception-2015-12-05-6726825d.pth",
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    url=INCEPTION_URL,
    flag="--inception-weights",
    env="USBENCH_INCEPTION_WEIGHTS",
)


def resolve_with_policy(spec: WeightsSpec, explicit: str | Path | None, expected_sha256: str | None = None,
                        download: bool = True) -> tuple[Path, str, bool]:
    """(path, sha256, official) under the hash policy of this module's docstring."""
    if explicit:
        p = Path(explicit).expanduser()
        pinned = expected_sha256 or (spec.sha256 if p.name == spec.filename else None)
        path, digest = resolve_weights(dataclasses.replace(spec, sha256=pinned), p)
    else:
        if expected_sha256:
            spec = dataclasses.replace(spec, sha256=expected_sha256)
        path, digest = resolve_weights(spec, None, download=download)
    return path, digest, digest == spec.sha256


def batched(images: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for im in images:
        batch.append(im)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def gray_batch_to_uint8_rgb(batch: list[np.ndarray]):
    """Stack 2-D uint8 images of one size into a (B, 3, H, W) uint8 tensor, gray replicated."""
    import torch

    shapes = {im.shape for im in batch}
    if len(shapes) > 1:
        raise InputError(f"images of mixed sizes in one set: {sorted(shapes)}", "resize them to one size (the benchmark's image_size does this)")
    for im in batch:
        if im.dtype != np.uint8 or im.ndim != 2:
            raise InputError(f"extractor needs 2-D uint8 images, got {im.dtype} {im.shape}", "read images with usbench.imageset.read_gray")
    x = torch.from_numpy(np.stack(batch))
    return x[:, None].expand(-1, 3, -1, -1).contiguous()


class InceptionExtractor:
    """2048-d pool3 features of torch-fidelity's TF-compatible Inception v3.

    Preprocessing is torch-fidelity's own: uint8 RGB (gray replicated), resized to 299×299 by its
    TF1-compatible bilinear interpolation (``interpolate_bilinear_2d_like_tensorflow1x``, no
    antialiasing), scaled to [-1, 1]. The network runs in float32 like torch-fidelity; features
    are returned in float64 and every statistic after that is float64, so results do not depend on
    the batch size beyond float32 rounding inside the network.

    Options: ``weights`` (path; else ``$USBENCH_INCEPTION_WEIGHTS``, TORCH_HOME and HF caches,
    download when online), ``weights_sha256`` (enforce a hash on an explicit file),
    ``batch_size`` (64), ``device`` ("cpu").
    """

    name = "inception"
    dim = 2048

    def __init__(self, weights: str | None = None, weights_sha256: str | None = None, batch_size: int = 64,
                 device: str = "cpu"):
        self.weights = weights
        self.weights_sha256 = weights_sha256
        self.batch_size = int(batch_size)
        self.device = device
        self._model = None
        self._resolved: tuple[Path, str, bool] | None = None

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> "InceptionExtractor":
        options = dict(options)
        known = {"weights", "weights_sha256", "batch_size", "device"}
        unknown = set(options) - known
        if unknown:
            raise ConfigError(f"unknown inception extractor option(s) {sorted(unknown)}", f"known: {sorted(known)}")
        return cls(**options)

    def resolve(self) -> tuple[Path, str, bool]:
        if self._resolved is None:
            self._resolved = resolve_with_policy(INCEPTION_WEIGHTS, self.weights, self.weights_sha256)
        return self._resolved

    def provenance(self) -> dict[str, Any]:
        path, digest, official = self.resolve()
        return {"extractor": self.name, "weights_sha256": digest, "weights_official": official,
                "resize": "torch-fidelity TF1 bilinear to 299x299, uint8, gray replicated to RGB"}

    def fingerprint(self) -> str:
        return f"inception|{self.resolve()[1]}|tf1-bilinear-299|uint8|gray3|pool3-2048"

    def model(self):
        if self._model is None:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

            path, _, _ = self.resolve()
            try:
                self._model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                          feature_extractor_weights_path=str(path)).to(self.device)
            except (RuntimeError, KeyError, ValueError, EOFError) as e:  # not an Inception state dict
                raise WeightsError(f"{path} is not a torch-fidelity Inception v3 weights file: {str(e).splitlines()[0][:120]}",
                                   f"pass {INCEPTION_WEIGHTS.filename} with {INCEPTION_WEIGHTS.flag}") from None
        return self._model

    def extract(self, images: Iterable[np.ndarray], n: int) -> np.ndarray:
        import torch

        model = self.model()
        out = np.empty((n, self.dim), dtype=np.float64)
        i = 0
        with torch.no_grad():  # as torch-fidelity's own extraction loop
            for batch in batched(images, self.batch_size):
                x = gray_batch_to_uint8_rgb(batch).to(self.device)
                (feats,) = model(x)
                out[i:i + len(batch)] = feats.double().cpu().numpy()
                i += len(batch)
        if i != n:
            raise InputError(f"expected {n} images, got {i}", "the image set changed while reading it")
        return out


class TorchModuleExtractor:
    """Features from any ``torch.nn.Module``: ``module = "pkg.mod:factory"`` returns the module,
    ``weights`` (optional path to a state dict; its sha256 is recorded), ``input_size`` (resize,
    bilinear, default none), ``channels`` (1 or 3), ``mean``/``std`` (applied to [0, 1] pixels).
    The output is flattened per image."""

    name = "torch-module"

    def __init__(self, module: str, weights: str | None = None, weights_sha256: str | None = None,
                 input_size: int | None = None, channels: int = 3, mean: float = 0.5, std: float = 0.5,
                 batch_size: int = 32, device: str = "cpu"):
        if ":" not in module:
            raise ConfigError(f"torch-module needs module = 'pkg.mod:factory', got {module!r}", "name the factory after a colon")
        self.module, self.weights, self.weights_sha256 = module, weights, weights_sha256
        self.input_size, self.channels, self.mean, self.std = input_size, int(channels), float(mean), float(std)
        self.batch_size, self.device = int(batch_size), device
        self._model = None
        self._digest: str | None = None

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> "TorchModuleExtractor":
        if "module" not in options:
            raise ConfigError("the torch-module extractor needs the option module = 'pkg.mod:factory'", "set it in [extractors.torch-module]")
        return cls(**options)

    def digest(self) -> str:
        if self._digest is None:
            if self.weights:
                spec = WeightsSpec(name=f"weights of {self.module}", filename=Path(self.weights).name, sha256=self.weights_sha256,
                                   flag="the weights option of the torch-module extractor")
                self._digest = resolve_weights(spec, self.weights)[1]
            else:
                self._digest = "no-weights"
        return self._digest

    def provenance(self) -> dict[str, Any]:
        out: dict[str, Any] = {"extractor": self.name, "module": self.module}
        if self.weights:
            out["weights_sha256"] = self.digest()  # the file loaded; no official file exists for a user module
        return out

    def fingerprint(self) -> str:
        return f"torch-module|{self.module}|{self.digest()}|{self.input_size}|{self.channels}|{self.mean}|{self.std}"

    def model(self):
        if self._model is None:
            import torch

            mod_name, _, attr = self.module.partition(":")
            try:
                factory = getattr(importlib.import_module(mod_name), attr)
            except (ImportError, AttributeError) as e:
                raise ConfigError(f"cannot import {self.module}: {e}", "check the module option") from None
            model = factory()
            if self.weights:
                self.digest()
                model.load_state_dict(torch.load(self.weights, map_location="cpu", weights_only=True))
            self._model = model.eval().to(self.device)
        return self._model

    def extract(self, images: Iterable[np.ndarray], n: int) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        model = self.model()
        rows = []
        with torch.inference_mode():
            for batch in batched(images, self.batch_size):
                x = gray_batch_to_uint8_rgb(batch)[:, : self.channels].float().div(255.0)
                if self.input_size:
                    x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
                x = (x - self.mean) / self.std
                rows.append(model(x.to(self.device)).reshape(len(batch), -1).double().cpu().numpy())
        return np.concatenate(rows) if rows else np.empty((0, 0))


class Dinov2Extractor:
    """DINOv2 CLS features (dgm-eval recommends ViT-L/14) through ``transformers``.

    ``weights``: a local Hugging Face model folder (config.json + weights) or a hub id present in
    the HF cache (``facebook/dinov2-large`` by default; never downloaded here). Preprocessing:
    gray → RGB, bicubic resize to 224, ImageNet normalisation.
    """

    name = "dinov2"

    def __init__(self, weights: str = "facebook/dinov2-large", batch_size: int = 16, device: str = "cpu"):
        self.weights, self.batch_size, self.device = weights, int(batch_size), device
        self._model = None

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> "Dinov2Extractor":
        return cls(**options)

    def _files(self) -> Path:
        p = Path(self.weights).expanduser()
        if p.is_dir():
            return p
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(self.weights, local_files_only=True))
        except Exception:
            raise WeightsError(f"DINOv2 weights not found: {self.weights} (a Hugging Face model folder)",
                               "put the model folder on disk and pass its path as the weights option of the dinov2 extractor") from None

    def fingerprint(self) -> str:
        from usbench.imageset import sha256_file

        folder = self._files()
        files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
        digest = ",".join(sha256_file(f)[:16] for f in files)
        return f"dinov2|{digest}|bicubic224|imagenet-norm|cls"

    def extract(self, images: Iterable[np.ndarray], n: int) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        if self._model is None:
            from transformers import Dinov2Model

            self._model = Dinov2Model.from_pretrained(str(self._files()), local_files_only=True).eval().to(self.device)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        rows = []
        with torch.inference_mode():
            for batch in batched(images, self.batch_size):
                x = gray_batch_to_uint8_rgb(batch).float().div(255.0)
                x = F.interpolate(x, size=(224, 224), mode="bicubic", align_corners=False)
                out = self._model(pixel_values=((x - mean) / std).to(self.device))
                rows.append(out.pooler_output.double().cpu().numpy())
        return np.concatenate(rows)
