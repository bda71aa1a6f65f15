"""The paper's Stable Diffusion recipe: fine-tune the whole UNet (or a LoRA adapter) on labelled
ultrasound images, prompts "Ultrasound image of {label} breast", text encoder and VAE frozen.

Defaults are the authors': learning rate 2e-6 constant, batch 2, 512 px (resize, random crop,
horizontal flip), gradient checkpointing, 20k steps.

>>> from usbench.recipes import finetune_sd, FinetuneConfig                  # doctest: +SKIP
>>> finetune_sd(FinetuneConfig(data="Dataset_BUSI_with_GT", base="runwayml/stable-diffusion-v1-5"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from usbench.generators.checkpoints import SD_KIND, check_checkpoint, folder_digest, load_sd_pipeline, resolve_checkpoint
from usbench.recipes.training import (
    FinetuneConfig, _fp32, Task, TrainResult, add_lora, data_card, lora_state_dict, make_accelerator, owned_output,
    parent_card, run_training,
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


def diffusion_targets(batch, vae, noise_scheduler, gens, dtype, device, noise_offset: float = 0.0):
    """Latents of the batch, the noise, the timesteps and the noisy latents (the standard SD objective).

    ``gens`` holds one generator per sample (seeded by its global position), so a sample gets the
    same noise and timestep whether it is trained on one process in a batch of 4 or on 4 processes.
    ``noise_offset`` adds a per-channel constant to the noise (diffusers' ``--noise_offset``).
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
    if noise_offset:
        offset = torch.stack([torch.randn((shape[0], 1, 1), generator=g) for g in gens]).to(device, dtype=noise.dtype)
        noise = noise + noise_offset * offset
    noisy = noise_scheduler.add_noise(latents, noise, t)
    target = noise if noise_scheduler.config.prediction_type == "epsilon" else noise_scheduler.get_velocity(latents, noise, t)
    return noisy, t, target


def training_prompts(batch, gens, empty_rate: float) -> list[str]:
    """The prompts of a batch; each is the empty prompt with probability ``empty_rate`` (drawn from
    the sample's own generator, after its noise), so the model also learns the unconditional branch."""
    import torch

    if not empty_rate:
        return [s.prompt for s in batch]
    return ["" if float(torch.rand(1, generator=g)) < empty_rate else s.prompt for s, g in zip(batch, gens)]


def diffusion_loss(pred, target, t, noise_scheduler, snr_gamma: float = 0.0):
    """MSE, or with Min-SNR-γ weighting (Hang et al. 2023, as diffusers' train_text_to_image.py):
    each sample's loss × min(SNR(t), γ) / SNR(t) (÷ (SNR+1) for v-prediction)."""
    import torch
    import torch.nn.functional as F

    if not snr_gamma:
        return F.mse_loss(pred.float(), target.float(), reduction="mean")
    from diffusers.training_utils import compute_snr

    snr = compute_snr(noise_scheduler, t)
    weights = torch.minimum(snr, torch.full_like(snr, snr_gamma))
    weights = weights / (snr + 1 if noise_scheduler.config.prediction_type == "v_prediction" else snr)
    per_sample = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=list(range(1, pred.ndim)))
    return (per_sample * weights).mean()


def prepare_run(cfg: FinetuneConfig, kind: str):
    """Check everything that can be checked before a folder is made: flags, the output folder, a
    resume's settings, the data and its split. Returns (cfg to run, out, resume record, data sets)."""
    from usbench.recipes.training import output_folder, resume_settings

    cfg.check()
    out = output_folder(cfg, kind)
    cfg, resumed = resume_settings(cfg, out)
    return cfg, out, resumed, load_training_set(cfg)


def finetune_sd(cfg: FinetuneConfig) -> TrainResult:
    """Fine-tune Stable Diffusion on ``cfg.data``; write the pipeline (or LoRA adapter) and its card to ``cfg.out``."""
    cfg, out, resumed, sets = prepare_run(cfg, SD_KIND)
    base_folder = resolve_checkpoint(cfg.base, SD_KIND)
    check_checkpoint(base_folder, SD_KIND)
    with owned_output(out):
        return _finetune_sd(cfg, out, resumed, sets, base_folder)


def _finetune_sd(cfg: FinetuneConfig, out: Path, resumed, sets, base_folder) -> TrainResult:
    from diffusers import DDPMScheduler

    from usbench.recipes.data import TrainingData

    full, train, the_split = sets
    accelerator = make_accelerator(cfg, out)
    pipe = load_sd_pipeline(base_folder, base_config=cfg.base_config)
    base_digest = folder_digest(base_folder)
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
        noisy, t, target = diffusion_targets(batch, vae, noise_scheduler, gens, dtype, device, cfg.noise_offset)
        ehs = encode_prompts(tokenizer, text_encoder, training_prompts(batch, gens, cfg.empty_prompt_rate), device)
        pred = model(noisy, t, ehs).sample
        return diffusion_loss(pred, target, t, noise_scheduler, cfg.snr_gamma)

    def pipeline_of(model):
        from diffusers import StableDiffusionPipeline

        return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=model,
                                       scheduler=pipe.scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)

    def save(model, folder: Path) -> None:
        from diffusers import StableDiffusionPipeline

        if cfg.lora:
            StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=lora_state_dict(model), safe_serialization=True)
            return
        pipeline_of(_fp32(model)).save_pretrained(folder, safe_serialization=True)

    def validate(model, folder: Path, steps: int) -> None:
        validation_images(pipeline_of(model), labels, folder, steps, data.resolution, cfg.seed)

    card = data_card(cfg.data, train, full, the_split)
    card.update(base_digest=base_digest, init_from_digest=parent_digest, parent_card=parent)
    task = Task(kind=SD_KIND, model=unet, loss=loss_fn, save=save, labels=labels, card=card,
                frozen={"vae": vae, "text_encoder": text_encoder}, validate=validate)
    return run_training(cfg, out, accelerator, task, data, trainable, resumed)


def validation_images(pipe, labels: list[str], folder: Path, steps: int, resolution: int, seed: int, extra=None) -> None:
    """One image per label (seed ``seed``), written as ``<folder>/<label>.png``: a look at training progress."""
    import torch

    from usbench.generators.checkpoints import prompt_for
    from usbench.generators.diffusion import to_gray_uint8
    from usbench.imageset import write_png

    folder.mkdir(parents=True, exist_ok=True)
    pipe.set_progress_bar_config(disable=True)
    for i, label in enumerate(labels):
        with torch.inference_mode():
            out = pipe(prompt=prompt_for(label), num_inference_steps=steps, height=resolution, width=resolution,
                       generator=torch.Generator().manual_seed(seed + i), output_type="np", **((extra or {}).get(label, {})))
        write_png(folder / f"{label}.png", to_gray_uint8(out.images[0]))


def _label_order(label: str):
    return ({"normal": 0, "benign": 1, "malignant": 2}.get(label, 9), label)
