"""A random but non-degenerate weights file for torch-fidelity's Inception v3 (tests and bench only)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def make_random_inception_weights(path: Path, seed: int = 0) -> Path:
    """Save a state dict of FeatureExtractorInceptionV3 with He-initialised convolutions.

    torch-fidelity's constructor insists on loading weights, so the load is skipped once while
    the module is built; PyTorch's default initialisation shrinks activations layer by layer
    (pool3 features ≈ 0, FID ≈ 0), hence the re-initialisation.
    """
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    original_loader, original_load = fe.load_state_dict_from_url, fe.FeatureExtractorInceptionV3.load_state_dict
    fe.load_state_dict_from_url = lambda *a, **k: {}
    fe.FeatureExtractorInceptionV3.load_state_dict = lambda self, sd, *a, **k: None
    try:
        model = fe.FeatureExtractorInceptionV3("build", ["2048"])
    finally:
        fe.load_state_dict_from_url = original_loader
        fe.FeatureExtractorInceptionV3.load_state_dict = original_load
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
    torch.save(model.state_dict(), path)
    return path
