"""The seed paper's generators: ``sd-busi`` (text-conditioned) and ``controlnet-busi`` (mask-conditioned).

Both load a diffusers checkpoint (see :mod:`usbench.generators.checkpoints`), prompt with
"Ultrasound image of {label} breast", sample with the authors' settings by default (PLMS 50
steps guidance 7; DDIM 50 steps guidance 5 for the ControlNet), and return 8-bit grayscale images
(luminance of the RGB output) resized to the size the benchmark asks for. Every request has its
own ``torch.Generator`` seeded with ``request.seed``: the same seed gives the same image whatever
else is in the batch.

>>> from usbench.generators import build_generator, GenerationRequest    # doctest: +SKIP
>>> gen = build_generator("sd-busi", {"model": "finetuned-sd", "steps": 20, "scheduler": "dpm++"})  # doctest: +SKIP
>>> img = next(gen.generate([GenerationRequest("a", "benign", seed=1)]))   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

import numpy as np

from usbench.errors import ConfigError, InputError
from usbench.generators.base import GenerationRequest, config_from_dict, fingerprint_of
from usbench.generators.checkpoints import (
    CONTROLNET_KIND, PAPER_LABELS, SCHEDULERS, SD_KIND, check_checkpoint, folder_digest, lora_base,
    load_controlnet_pipeline, load_sd_pipeline, out_of_memory_error, pick_device, prompt_for, read_card,
    resolve_checkpoint, set_scheduler, torch_dtype,
)
from usbench.imageset import resize_gray, resize_mask


@dataclass(frozen=True)
class DiffusionConfig:
    model: str = ""  # folder, hub id in the HF cache, or "" = where `usbench finetune` writes
    base: str = ""  # base SD of a LoRA or bare ControlNet folder (default: from its model card)
    base_config: str = ""  # configs for a single-file .ckpt/.safetensors model: a folder or hub id (default SD 1.5's, from the HF cache)
    scheduler: str = "pndm"  # pndm = PLMS, the paper's sampler for SD
    steps: int = 50
    guidance: float = 7.0
    negative_prompt: str = ""
    dtype: str = "fp32"  # fp32 | fp16 | bf16
    batch_size: int = 4
    device: str = "auto"
    attention: str = "sdpa"  # sdpa (PyTorch's fused attention) | default (diffusers' plain attention)
    conditioning_scale: float = 1.0  # ControlNet only
    mask_fit: str = "crop"  # ControlNet: a non-square mask is centre-cropped (as training crops), "letterbox"ed or "squash"ed

    def check(self, where: str) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"{where}: unknown scheduler {self.scheduler!r}", f"use one of {', '.join(SCHEDULERS)}")
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError(f"{where}: steps and batch_size must be at least 1", "fix the config")
        if self.attention not in ("sdpa", "default"):
            raise ConfigError(f"{where}: unknown attention {self.attention!r}", "use sdpa or default")
        if self.mask_fit not in MASK_FITS:
            raise ConfigError(f"{where}: unknown mask_fit {self.mask_fit!r}", f"use one of {', '.join(MASK_FITS)}")
        torch_dtype(self.dtype)


MASK_FITS = ("crop", "letterbox", "squash")


class _DiffusionGenerator:
    name: ClassVar[str]
    kind: ClassVar[str]
    needs_weights: ClassVar[bool] = True
    mask_conditioned: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: DiffusionConfig):
        config.check(self.name)
        self.config = config
        self.folder = resolve_checkpoint(config.model, self.kind)
        self.found = check_checkpoint(self.folder, self.kind)
        self.card = read_card(self.folder) or {}
        self.labels = tuple(self.card.get("labels") or PAPER_LABELS)
        self._pipe = None
        self._digest: str | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        return cls(config_from_dict(DiffusionConfig, {**cls.defaults, **config}, cls.name))

    # -- identity -------------------------------------------------------------------------
    def fingerprint(self) -> str:
        if self._digest is None:
            digests = [folder_digest(self.folder)]
            base = self._base_folder()
            if base is not None:
                digests.append(folder_digest(base))
            self._digest = fingerprint_of(*digests)
        cfg = {k: v for k, v in asdict(self.config).items() if k not in ("model", "base", "base_config", "batch_size", "device")}
        return fingerprint_of(self.name, cfg, self._digest)

    def settings(self) -> dict[str, Any]:
        """The run record's generation settings (leaderboard columns)."""
        c = self.config
        out = {"sampler": c.scheduler, "steps": c.steps, "guidance": c.guidance, "dtype": c.dtype, "batch_size": c.batch_size}
        return out | ({"mask_fit": c.mask_fit} if self.mask_conditioned else {})

    def _base_folder(self) -> Path | None:
        if self.found == "lora":
            return resolve_checkpoint(lora_base(self.folder, self.config.base), SD_KIND)
        if self.found == "controlnet-model":
            return resolve_checkpoint(self.config.base or self.card.get("base", ""), SD_KIND)
        return None

    # -- pipeline -------------------------------------------------------------------------
    @property
    def pipe(self):
        if self._pipe is None:
            pipe = self._load()
            set_scheduler(pipe, self.config.scheduler)
            if self.config.attention == "default":
                from diffusers.models.attention_processor import AttnProcessor

                pipe.unet.set_attn_processor(AttnProcessor())
            self.device = pick_device(self.config.device)
            pipe.to(self.device)
            pipe.set_progress_bar_config(disable=True)
            self._pipe = pipe
        return self._pipe

    @property
    def resolution(self) -> int:
        """The model's native image size (512 for SD 1.5)."""
        pipe = self.pipe
        return int(pipe.unet.config.sample_size * pipe.vae_scale_factor)

    def _load(self):
        raise NotImplementedError

    # -- generation -----------------------------------------------------------------------
    def check_requests(self, requests: Sequence[GenerationRequest]) -> None:
        unknown = sorted({r.label for r in requests if not r.prompt and r.label not in self.labels})
        if unknown:
            raise InputError(
                f"{self.name} model {self.folder} was not trained on label(s) {', '.join(unknown)}",
                f"it knows {', '.join(self.labels)} (its model card); ask only for those, or set a prompt",
            )

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[np.ndarray]:
        import torch

        requests = list(requests)
        self.check_requests(requests)
        bs = self.config.batch_size
        for start in range(0, len(requests), bs):
            batch = requests[start:start + bs]
            extra = self._conditioning(batch)
            generators = [torch.Generator(device="cpu").manual_seed(int(r.seed)) for r in batch]
            try:
                with torch.inference_mode():
                    out = self.pipe(
                        prompt=[r.prompt or prompt_for(r.label) for r in batch],
                        negative_prompt=[self.config.negative_prompt] * len(batch) if self.config.negative_prompt else None,
                        num_inference_steps=self.config.steps, guidance_scale=self.config.guidance,
                        generator=generators, output_type="np", **extra,
                    )
            except torch.cuda.OutOfMemoryError as exc:
                raise out_of_memory_error(exc, f"generating with {self.name}", bs) from None
            for req, rgb in zip(batch, out.images):
                yield resize_gray(to_gray_uint8(rgb), req.size)

    def _conditioning(self, batch: Sequence[GenerationRequest]) -> dict[str, Any]:
        return {}


def to_gray_uint8(rgb: np.ndarray) -> np.ndarray:
    """RGB floats in [0, 1] (diffusers' ``output_type="np"``) → 8-bit luminance (ITU-R 601, as PIL)."""
    rgb8 = np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
    from PIL import Image

    return np.asarray(Image.fromarray(rgb8, "RGB").convert("L"))


class StableDiffusionGenerator(_DiffusionGenerator):
    """``sd-busi``: Stable Diffusion 1.5 fine-tuned on BUSI, prompted by label."""

    name = SD_KIND
    kind = SD_KIND

    def _load(self):
        return load_sd_pipeline(self.folder, self.config.dtype, base=self.config.base, base_config=self.config.base_config)


class ControlNetGenerator(_DiffusionGenerator):
    """``controlnet-busi``: the fine-tuned SD with a ControlNet conditioned on the lesion mask."""

    name = CONTROLNET_KIND
    kind = CONTROLNET_KIND
    mask_conditioned = True
    defaults = {"scheduler": "ddim", "guidance": 5.0}

    def _load(self):
        return load_controlnet_pipeline(self.folder, self.config.dtype, base=self.config.base, base_config=self.config.base_config)

    def check_requests(self, requests: Sequence[GenerationRequest]) -> None:
        super().check_requests(requests)
        for r in requests:
            check_mask(r)

    def _conditioning(self, batch: Sequence[GenerationRequest]) -> dict[str, Any]:
        from PIL import Image

        res = self.resolution
        images = []
        for r in batch:
            mask = np.zeros((res, res), bool) if r.mask is None else resize_mask(np.asarray(r.mask).astype(bool), res)
            images.append(Image.fromarray(np.repeat((mask.astype(np.uint8) * 255)[..., None], 3, axis=2), "RGB"))
        return {"image": images, "controlnet_conditioning_scale": self.config.conditioning_scale,
                "height": res, "width": res}


def check_mask(request: GenerationRequest) -> None:
    """A conditioning mask must be 2-D, binary, and of the request's size."""
    if request.mask is None:
        return
    mask = np.asarray(request.mask)
    if mask.ndim != 2 or mask.shape != (request.size, request.size):
        raise InputError(
            f"request {request.id}: mask is {'x'.join(map(str, mask.shape[::-1]))} but the image size is {request.size}x{request.size}",
            "give masks of the requested size (resize with nearest-neighbour)",
        )
    if mask.dtype != bool:
        values = np.unique(mask)
        if len(values) > 2 or (len(values) == 2 and values[0] != 0) or (len(values) == 1 and values[0] not in (0, 1, 255)):
            raise InputError(
                f"request {request.id}: mask is not binary (values {values[:6].tolist()})",
                "masks hold 0 for background and one value for lesion; threshold it",
            )


__all__ = ["ControlNetGenerator", "DiffusionConfig", "StableDiffusionGenerator", "check_mask", "to_gray_uint8"]
