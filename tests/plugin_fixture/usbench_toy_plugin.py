"""A third-party plugin as a user would write it: registered only through entry points.

The tests put this folder (with its ``usbench_toy_plugin-0.1.dist-info``) on ``sys.path`` /
``PYTHONPATH``; usbench must find ``toy-noise`` and ``toy-mean-gap`` without being told.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from usbench.generators.base import config_from_dict, fingerprint_of
from usbench.metrics.base import MetricResult, require_images


@dataclass
class ToyConfig:
    brightness: int = 100
    delay: float = 0.0  # seconds per image, so a test can kill a run mid-generation


class ToyNoise:
    """Gaussian noise around a brightness that depends on the label; honours no masks."""

    name = "toy-noise"
    needs_weights = False
    mask_conditioned = False

    def __init__(self, config: ToyConfig):
        self.config = config

    @classmethod
    def from_config(cls, config):
        return cls(config_from_dict(ToyConfig, config, "[generator.toy-noise]"))

    def fingerprint(self):
        return fingerprint_of("toy-noise", self.config.brightness)

    def generate(self, requests):
        shift = {"normal": 0, "benign": 20, "malignant": 40}
        for r in requests:
            if self.config.delay:
                time.sleep(self.config.delay)
            rng = np.random.default_rng(r.seed)
            img = rng.normal(self.config.brightness + shift.get(r.label, 0), 20, (r.size, r.size))
            yield np.clip(img, 0, 255).astype(np.uint8)


class ToyMeanGap:
    """|mean intensity of generated − of reference|, with a seeded percentile bootstrap interval."""

    name = "toy-mean-gap"
    higher_is_better = False
    extractor = None
    needs = frozenset({"images"})
    min_images = 2
    calls_file = os.environ.get("TOY_METRIC_CALLS", "")

    @classmethod
    def from_config(cls, config):
        return cls()

    def compute(self, ctx):
        require_images(self.name, len(ctx.generated), self.min_images, "generated")
        if self.calls_file:
            with open(self.calls_file, "a") as f:
                f.write("call\n")
        g = np.array([ctx.generated.load_image(r, ctx.image_size).mean() for r in ctx.generated])
        ref = np.array([ctx.reference.load_image(r, ctx.image_size).mean() for r in ctx.reference])
        value = abs(g.mean() - ref.mean())
        rng = np.random.default_rng(ctx.seed)
        boots = [abs(rng.choice(g, len(g)).mean() - rng.choice(ref, len(ref)).mean()) for _ in range(ctx.n_bootstrap)]
        lo, hi = (np.percentile(boots, [2.5, 97.5]) if boots else (np.nan, np.nan))
        return MetricResult(self.name, float(value), float(lo), float(hi), len(g), len(ref), False)
