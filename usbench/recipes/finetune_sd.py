"""The paper's Stable Diffusion recipe: fine-tune the whole UNet (or a LoRA adapter) on labelled
ultrasound images, prompts "Ultrasound image of {label} breast", text encoder and VAE frozen.

Defaults are the authors': learning rate 2e-6 constant, batch 2, 512 px (resize, random crop,
horizontal flip), gradient checkpointing, 20k steps.

>>> from usbench.recipes import finetune_sd, FinetuneConfig                  # doctest: +SKIP
>>> finetune_sd(FinetuneConfig(data="Dataset_BUSI_with_GT", base="runwayml/stable-diffusion-v1-5"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from usbench.generators.checkpoints import SD_KIND, folder_digest, load_sd_pipeline, resolve_checkpoint
from usbench.recipes.training import (
    FinetuneConfig, _fp32, Task, TrainResult, add_lora, data_card, lora_state_dict, make_accelerator, parent_card,
    prepare_out, run_training,
)

SD_DEFAULTS = dict(steps=20000, lr=2e-6, batch_size=2)


def load_training_set(cfg: FinetuneConfig):
    from usbench.datasets import load
    from usbench.recipes.data import training_split

    full = load(cfg.data)
    the_split = training_split(full, cfg.split, cfg.test_fraction, cfg.seed)
    train = the_split.train if the_split is not None else full
    return full, train, the_split


def encode_prompts(tokenizer, text_encoder, prompts: list[str], device):
    import torch

    ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids.to(device)
    with torch.no_grad():
        return text_encoder(ids)[0]


def diffusion_targets(batch, vae, noise_scheduler, gens, dtype, device):
    """Latents of the batch, the noise, the timesteps and the noisy latents (the standard SD objective).

    ``gens`` holds one generator per sample (seeded by its global position), so a sample gets the
    same noise and timestep whether it is trained on one process in a batch of 4 or on 4 processes.
    """
    import numpy as np
    import torch

    pixels = torch.from_numpy(np.stack([s.pixels for s in batch])).to(device, dtype=dtype)
    with torch.no_grad():
        dist = vae.encode(pixels).latent_dist
        shape = dist.mean.shape[1:]
        eps = torch.stack([torch.randn(shape, generator=g) for g in gens]).to(device, dtype=dist.mean.dtype)
        latents = (dist.mean + dist.std * eps) * vae.config.scaling_factor
    noise = torch.stack([torch.randn(shape, generator=g) for g in gens]).to(device, dtype=latents.dtype)
    steps = noise_scheduler.config.num_train_timesteps
    t = torch.cat([torch.randint(0, steps, (1,), generator=g) for g in gens]).to(device)
    noisy = noise_scheduler.add_noise(latents, noise, t)
    target = noise if noise_scheduler.config.prediction_type == "epsilon" else noise_scheduler.get_velocity(latents, noise, t)
    return noisy, t, target


def finetune_sd(cfg: FinetuneConfig) -> TrainResult:
    """Fine-tune Stable Diffusion on ``cfg.data``; write the pipeline (or LoRA adapter) and its card to ``cfg.out``."""
    import torch.nn.functional as F
    from diffusers import DDPMScheduler

    from usbench.recipes.data import TrainingData

    cfg.check()
    out = prepare_out(cfg, SD_KIND)
    accelerator = make_accelerator(cfg, out)
    full, train, the_split = load_training_set(cfg)

    pipe = load_sd_pipeline(cfg.base)
    base_digest = folder_digest(resolve_checkpoint(cfg.base, SD_KIND))
    parent, parent_digest = parent_card(cfg.init_from, SD_KIND)
    if cfg.init_from:  # successive fine-tuning: the UNet of the previous run (LoRA fused in)
        pipe.unet = load_sd_pipeline(cfg.init_from).unet
    unet, vae, text_encoder, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    vae.requires_grad_(False)
    text_encoder.requires_grad_(False)
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    native = int(unet.config.sample_size * pipe.vae_scale_factor)
    data = TrainingData(train, cfg.resolution or native, with_masks=False, seed=cfg.seed)

    if cfg.lora:
        trainable = add_lora(unet, cfg.lora, cfg.seed)
    else:
        unet.requires_grad_(True)
        trainable = [p for p in unet.parameters()]
    unet.train()
    labels = sorted(set(data.labels) | set((parent or {}).get("labels", [])), key=_label_order)

    def loss_fn(batch, gens, dtype, model):
        device = accelerator.device
        noisy, t, target = diffusion_targets(batch, vae, noise_scheduler, gens, dtype, device)
        ehs = encode_prompts(tokenizer, text_encoder, [s.prompt for s in batch], device)
        pred = model(noisy, t, ehs).sample
        return F.mse_loss(pred.float(), target.float(), reduction="mean")

    def save(model, folder: Path) -> None:
        from diffusers import StableDiffusionPipeline

        if cfg.lora:
            StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=lora_state_dict(model), safe_serialization=True)
            return
        final = StableDiffusionPipeline(vae=_fp32(vae), text_encoder=_fp32(text_encoder),
                                        tokenizer=tokenizer, unet=_fp32(model), scheduler=pipe.scheduler,
                                        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        final.save_pretrained(folder, safe_serialization=True)

    card = data_card(cfg.data, train, full, the_split)
    card.update(base_digest=base_digest, init_from_digest=parent_digest, parent_card=parent)
    task = Task(kind=SD_KIND, model=unet, loss=loss_fn, save=save, labels=labels, card=card, frozen=[vae, text_encoder])
    return run_training(cfg, out, accelerator, task, data, trainable)


def _label_order(label: str):
    return ({"normal": 0, "benign": 1, "malignant": 2}.get(label, 9), label)
