"""The seed paper's fine-tuning recipes (Stable Diffusion, ControlNet), full or LoRA, on accelerate.

``usbench finetune sd-busi`` and ``usbench finetune controlnet-busi`` call these; see docs/diffusion.md.
"""

from usbench.recipes.training import FinetuneConfig, TrainResult


def finetune_sd(cfg: FinetuneConfig) -> TrainResult:
    from usbench.recipes.finetune_sd import finetune_sd as run

    return run(cfg)


def finetune_controlnet(cfg: FinetuneConfig) -> TrainResult:
    from usbench.recipes.finetune_controlnet import finetune_controlnet as run

    return run(cfg)


def recipe_config(kind: str, **overrides) -> FinetuneConfig:
    """A FinetuneConfig with the authors' defaults for ``kind`` (sd-busi or controlnet-busi), then ``overrides``
    (None values are ignored, so CLI flags left unset keep the defaults)."""
    from usbench.recipes.finetune_controlnet import CONTROLNET_DEFAULTS
    from usbench.recipes.finetune_sd import SD_DEFAULTS

    defaults = SD_DEFAULTS if kind == "sd-busi" else CONTROLNET_DEFAULTS
    return FinetuneConfig(**{**defaults, **{k: v for k, v in overrides.items() if v is not None}})


__all__ = ["FinetuneConfig", "TrainResult", "finetune_controlnet", "finetune_sd", "recipe_config"]
