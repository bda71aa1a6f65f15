"""The paper's ControlNet recipe: a ControlNet initialised from the fine-tuned SD's UNet, conditioned
on the lesion mask (several masks of one image merged), base locked.

Defaults are the authors': learning rate 1e-5, batch 4, 512 px, 15k steps; the held-out test
split (BUSI benign 403–437, malignant 186–210, normal 114–133) is kept out of training.
"""

from __future__ import annotations

import math
from pathlib import Path

from usbench.errors import WeightsError
from usbench.generators.checkpoints import (
    CONTROLNET_KIND, SD_KIND, check_checkpoint, folder_digest, load_sd_pipeline, read_card, resolve_checkpoint,
)
from usbench.recipes.finetune_sd import (
    _label_order, diffusion_loss, diffusion_targets, encode_prompts, prepare_run, training_prompts, validation_images,
)
from usbench.recipes.training import (
    FinetuneConfig, _fp32, Task, TrainResult, data_card, make_accelerator, owned_output, parent_card, run_training,
)

CONTROLNET_DEFAULTS = dict(steps=15000, lr=1e-5, batch_size=4)
_SD_CONDITIONING_CHANNELS = (16, 32, 96, 256)  # SD 1.5's ControlNet: three stride-2 steps for VAE factor 8


def conditioning_channels(vae_scale_factor: int) -> tuple[int, ...]:
    """The conditioning encoder downsamples as much as the VAE: one stride-2 step per factor 2."""
    steps = int(round(math.log2(vae_scale_factor)))
    return _SD_CONDITIONING_CHANNELS[: steps + 1]


def finetune_controlnet(cfg: FinetuneConfig) -> TrainResult:
    """Train a ControlNet on top of the fine-tuned SD ``cfg.base``; write a full ControlNet pipeline to ``cfg.out``."""
    if cfg.lora:
        raise WeightsError("LoRA is offered for the Stable Diffusion recipe only", "drop --lora; the ControlNet trains a copy of the encoder")
    base_folder = resolve_checkpoint(cfg.base, SD_KIND)
    check_checkpoint(base_folder, SD_KIND)  # a ControlNet folder here is the wrong kind
    cfg, out, resumed, sets = prepare_run(cfg, CONTROLNET_KIND)
    with owned_output(out):
        return _finetune_controlnet(cfg, out, resumed, sets, base_folder)


def _finetune_controlnet(cfg: FinetuneConfig, out: Path, resumed, sets, base_folder: Path) -> TrainResult:
    import numpy as np
    import torch
    from diffusers import ControlNetModel, DDPMScheduler, StableDiffusionControlNetPipeline

    from usbench.recipes.data import TrainingData

    full, train, the_split = sets
    accelerator = make_accelerator(cfg, out)
    pipe = load_sd_pipeline(base_folder, base_config=cfg.base_config)  # a LoRA base is fused into its UNet
    base_card = read_card(base_folder) or {}
    parent, parent_digest = parent_card(cfg.init_from, CONTROLNET_KIND)
    unet, vae, text_encoder, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    for m in (unet, vae, text_encoder):
        m.requires_grad_(False)
    if cfg.init_from:
        init = resolve_checkpoint(cfg.init_from, CONTROLNET_KIND)
        check_checkpoint(init, CONTROLNET_KIND)
        controlnet = ControlNetModel.from_pretrained(init / "controlnet" if (init / "controlnet").is_dir() else init)
    else:
        torch.manual_seed(cfg.seed)
        controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=conditioning_channels(pipe.vae_scale_factor))
    controlnet.requires_grad_(True)
    controlnet.train()
    trainable = list(controlnet.parameters())
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    native = int(unet.config.sample_size * pipe.vae_scale_factor)
    data = TrainingData(train, cfg.resolution or native, with_masks=True, seed=cfg.seed)
    labels = sorted(set(data.labels) | set((parent or {}).get("labels", [])), key=_label_order)
    known = set(base_card.get("labels") or labels)
    if not set(labels) <= known:
        raise WeightsError(
            f"the base SD {base_folder} was not trained on label(s) {', '.join(sorted(set(labels) - known))}",
            "fine-tune the SD on this data first (usbench finetune sd-busi --init-from ...)",
        )

    def loss_fn(batch, gens, dtype, model):
        device = accelerator.device
        noisy, t, target = diffusion_targets(batch, vae, noise_scheduler, gens, dtype, device, cfg.noise_offset)
        ehs = encode_prompts(tokenizer, text_encoder, training_prompts(batch, gens, cfg.empty_prompt_rate), device)
        cond = torch.from_numpy(np.stack([s.conditioning for s in batch])).to(device, dtype=noisy.dtype)
        down, mid = model(noisy, t, encoder_hidden_states=ehs, controlnet_cond=cond, return_dict=False)
        pred = unet(noisy, t, ehs, down_block_additional_residuals=[d.to(dtype) for d in down],
                    mid_block_additional_residual=mid.to(dtype)).sample
        return diffusion_loss(pred, target, t, noise_scheduler, cfg.snr_gamma)

    def pipeline_of(model):
        return StableDiffusionControlNetPipeline(
            vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, controlnet=model,
            scheduler=pipe.scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )

    def save(model, folder: Path) -> None:  # the frozen parts are fp32 again here: the base, bit for bit
        pipeline_of(_fp32(model)).save_pretrained(folder, safe_serialization=True)

    def validate(model, folder: Path, steps: int) -> None:
        from PIL import Image

        extra = {}  # each label conditioned on the mask of its first training image
        for label in labels:
            sample = next((data.sample(i, np.random.default_rng(0)) for i, r in enumerate(data.imageset.records)
                           if r.label == label), None)
            if sample is not None:
                image = Image.fromarray((sample.conditioning.transpose(1, 2, 0) * 255).astype(np.uint8), "RGB")
                extra[label] = {"image": image}
        validation_images(pipeline_of(model), list(extra), folder, steps, data.resolution, cfg.seed, extra)

    card = data_card(cfg.data, train, full, the_split)
    card.update(base_digest=folder_digest(base_folder), base_card=base_card, init_from_digest=parent_digest,
                parent_card=parent, conditioning="lesion mask (union of an image's masks), 3-channel 0/1")
    task = Task(kind=CONTROLNET_KIND, model=controlnet, loss=loss_fn, save=save, labels=labels, card=card,
                frozen={"vae": vae, "text_encoder": text_encoder, "unet": unet}, validate=validate)
    return run_training(cfg, out, accelerator, task, data, trainable, resumed)
