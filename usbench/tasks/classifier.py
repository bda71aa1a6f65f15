"""Benign-vs-malignant classifiers for the utility experiment: a small CNN (CPU, phantom-sized data)
and torchvision's ResNet-18 (real data; ImageNet weights when present, random init otherwise).

Every training run gets the same number of optimisation steps whatever the size of its training
set, so that "more data" is not confused with "longer training".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from usbench.errors import ConfigError, WeightsError
from usbench.weights import WeightsSpec, resolve_weights

MODELS = ("small-cnn", "resnet18")
# torchvision's file; its name carries the first 8 hex digits of its sha256 (torch.hub's convention)
RESNET18_IMAGENET = WeightsSpec(
    name="ResNet-18 ImageNet (torchvision IMAGENET1K_V1)", filename="resnet18-f37072fd.pth", sha256=None,
    url="https://download.pytorch.org/models/resnet18-f37072fd.pth", flag="--resnet-weights",
    env="USBENCH_RESNET18_WEIGHTS",
)
RESNET18_SHA256_PREFIX = "f37072fd"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelInfo:
    model: str
    init: str  # "random" or "ImageNet"
    weights_file: str | None = None
    weights_sha256: str | None = None

    def describe(self) -> str:
        if self.init == "random":
            return f"{self.model}, random initialisation (no pretrained weights)"
        return f"{self.model}, ImageNet weights {self.weights_file} (sha256 {self.weights_sha256})"


def small_cnn():
    import torch.nn as nn

    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                             nn.MaxPool2d(2))

    return nn.Sequential(block(1, 16), block(16, 32), block(32, 64), block(64, 64), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Dropout(0.2), nn.Linear(64, 1))


class _GrayResNet:
    """ResNet-18 on grayscale: the channel is repeated to RGB and ImageNet-normalised."""

    @staticmethod
    def build(state_dict=None):
        import torch
        import torch.nn as nn
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        if state_dict is not None:
            net.load_state_dict(state_dict)
        net.fc = nn.Linear(net.fc.in_features, 1)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

        class Wrapped(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = net
                self.register_buffer("mean", mean)
                self.register_buffer("std", std)

            def forward(self, x):
                return self.net((x.expand(-1, 3, -1, -1) - self.mean) / self.std)

        return Wrapped()


def resnet_imagenet_state(explicit: str | Path | None, required: bool):
    """ImageNet weights for ResNet-18 through :func:`usbench.weights.resolve_weights` (no download):
    (state_dict, ModelInfo); random initialisation when absent and not ``required``."""
    import torch

    try:
        path, digest = resolve_weights(RESNET18_IMAGENET, explicit, download=False)
    except WeightsError:
        if required:
            raise
        return None, ModelInfo("resnet18", "random")
    if path.name == RESNET18_IMAGENET.filename and not digest.startswith(RESNET18_SHA256_PREFIX):
        raise WeightsError(f"{path} has sha256 {digest[:16]}… but torchvision's file starts with {RESNET18_SHA256_PREFIX}",
                           "the file is corrupt or the wrong one; delete it and put the right file there")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        _GrayResNet.build(state)  # proves the keys and shapes fit
    except Exception as exc:
        raise WeightsError(f"{path} is not a torchvision ResNet-18 state dict ({type(exc).__name__})",
                           "pass resnet18-f37072fd.pth with --resnet-weights") from None
    return state, ModelInfo("resnet18", "ImageNet", str(path), digest)


def build_classifier(model: str, imagenet_state=None):
    if model == "small-cnn":
        return small_cnn()
    if model == "resnet18":
        return _GrayResNet.build(imagenet_state)
    raise ConfigError(f"unknown classifier {model!r}", f"known: {', '.join(MODELS)}")


def train_classifier(model: str, x: np.ndarray, y: np.ndarray, steps: int, seed: int, batch_size: int = 32,
                     learning_rate: float = 1e-3, imagenet_state=None, augment: bool = True):
    """Train on float32 images (N, 1, H, W) in [0, 1] and 0/1 labels for ``steps`` minibatches."""
    import torch

    from usbench.tasks.segmenter import augment as augment_batch

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = build_classifier(model, imagenet_state)
    opt = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=learning_rate, total_steps=steps)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))
    n_pos = float(y.sum())
    pos_weight = torch.tensor((len(y) - n_pos) / max(n_pos, 1.0))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    order, cursor = torch.randperm(len(xt), generator=gen), 0
    net.train()
    for _ in range(steps):
        if cursor + batch_size > len(order):
            order, cursor = torch.randperm(len(xt), generator=gen), 0
        idx = order[cursor:cursor + batch_size]
        cursor += batch_size
        xb = xt[idx]
        if augment:
            xb, _ = augment_batch(xb, None, gen)
        opt.zero_grad()
        loss = loss_fn(net(xb).view(-1), yt[idx])
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    return net


def predict_scores(net, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Malignancy scores (sigmoid of the logit) for float32 images (N, 1, H, W)."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(torch.sigmoid(net(torch.from_numpy(x[i:i + batch_size])).view(-1)).numpy())
    return np.concatenate(out).astype(np.float64)


def steps_for(n_images: int, epochs: int, batch_size: int) -> int:
    """Optimisation steps of ``epochs`` passes over ``n_images`` (the real training set)."""
    return max(1, epochs * math.ceil(n_images / batch_size))
