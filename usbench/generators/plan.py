"""The one request planner: which images a generator is asked for, and the run id they make.

``usbench generate`` and ``usbench run`` both plan with :func:`plan_generation`, so the same
generator, reference, split and seed give the same requests (and images) from either command.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from usbench.common import SEED_STRIDE, fingerprint_of
from usbench.errors import NotEnoughImagesError
from usbench.generators import Generator, GenerationRequest, build_generator
from usbench.imageset import ImageSet


def make_requests(reference: ImageSet, n: int, seed: int, image_size: int, conditioning: ImageSet | None = None) -> list[GenerationRequest]:
    """``n`` requests with labels in the reference's proportions.

    When ``conditioning`` is given (mask-conditioned generators), each request takes the label and
    lesion mask of a conditioning record, cycling through them per label.
    """
    counts = reference.counts()
    labels = [l for l in reference.labels] or [""]
    total = sum(counts.get(l, 0) for l in labels) or 1
    quotas = {l: int(math.floor(n * counts.get(l, 0) / total)) for l in labels}
    for l in sorted(labels, key=lambda l: -(n * counts.get(l, 0) / total - quotas[l]))[: n - sum(quotas.values())]:
        quotas[l] += 1
    requests: list[GenerationRequest] = []
    for label in labels:
        pool = [r for r in conditioning.records if r.label == label] if conditioning is not None else []
        if conditioning is not None and not pool and quotas[label]:
            raise NotEnoughImagesError(
                f"the conditioning split has no {label} images to take masks from", "use a larger reference or another split"
            )
        for k in range(quotas[label]):
            pos = len(requests)
            mask = None
            if pool:
                mask = conditioning.load_mask(pool[k % len(pool)], image_size)
                if label == "normal" or (mask is not None and not mask.any()):
                    mask = None
            requests.append(GenerationRequest(
                id=f"{label or 'image'}-{k:05d}", label=label, seed=seed * SEED_STRIDE + pos, size=image_size,
                mask=mask, index=k, position=pos,
            ))
    return requests


def requests_fingerprint(requests: list[GenerationRequest]) -> str:
    h = hashlib.sha256()
    for r in requests:
        h.update(f"{r.id}|{r.label}|{r.seed}|{r.size}|{r.prompt}|".encode())
        if r.mask is not None:
            h.update(np.packbits(r.mask).tobytes())
    return h.hexdigest()


@dataclass
class GenerationPlan:
    """A built generator, its requests, and the run id they make."""

    name: str
    generator: Generator
    config: dict[str, Any]
    requests: list[GenerationRequest]
    mask_conditioned: bool

    @property
    def run_id(self) -> str:
        return f"{self.name}-{fingerprint_of(self.generator.fingerprint(), requests_fingerprint(self.requests))[:10]}"

    def check(self) -> None:
        """The backend's own refusal (too many requests for a folder, labels it was not trained on), before any write."""
        if hasattr(self.generator, "check_requests"):
            self.generator.check_requests(self.requests)


def plan_generation(name: str, config: dict[str, Any] | None, reference: ImageSet, n: int, seed: int, image_size: int,
                    conditioning: ImageSet | None = None) -> GenerationPlan:
    """Build generator ``name`` and plan ``n`` requests following ``reference``'s label proportions.
    A mask-conditioned generator takes its masks from ``conditioning`` (the reference's test split)
    when the reference has masks."""
    gen = build_generator(name, config or {})
    masks = conditioning if getattr(gen, "mask_conditioned", False) and reference.has_masks else None
    return GenerationPlan(name, gen, dict(config or {}), make_requests(reference, n, seed, image_size, masks), masks is not None)


__all__ = ["GenerationPlan", "make_requests", "plan_generation", "requests_fingerprint"]
