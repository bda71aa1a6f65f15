"""The seed paper's fine-tuning recipes (Stable Diffusion, ControlNet), full or LoRA, on accelerate.

``usbench finetune sd-busi`` and ``usbench finetune controlnet-busi`` call these; see docs/diffusion.md.
(The functions share their modules' names; importing them here makes ``usbench.recipes.finetune_sd``
the function, the module stays reachable as ``sys.modules["usbench.recipes.finetune_sd"]``.)
"""

from usbench.recipes.finetune_controlnet import CONTROLNET_DEFAULTS, finetune_controlnet
from usbench.recipes.finetune_sd import SD_DEFAULTS, finetune_sd
from usbench.recipes.training import FinetuneConfig, TrainResult

LORA_LR = 1e-4


def recipe_config(kind: str, **overrides) -> FinetuneConfig:
    """A FinetuneConfig with the authors' defaults for ``kind`` (sd-busi or controlnet-busi), then ``overrides``
    (None values are ignored, so CLI flags left unset keep the defaults)."""
    defaults = dict(SD_DEFAULTS if kind == "sd-busi" else CONTROLNET_DEFAULTS)
    if overrides.get("lora"):
        defaults["lr"] = LORA_LR  # an adapter starting at zero needs a larger step than 2e-6
    given = {k: v for k, v in overrides.items() if v is not None}
    return FinetuneConfig(**{**defaults, **given}, explicit=tuple(sorted(given)))


__all__ = ["FinetuneConfig", "TrainResult", "finetune_controlnet", "finetune_sd", "recipe_config"]
