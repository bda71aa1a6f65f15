"""A tiny Stable Diffusion (and ControlNet) built from configs in code, for tests and benchmarks.

It has the real architecture of Stable Diffusion 1.5 (UNet2DConditionModel, AutoencoderKL,
CLIPTextModel, CLIPTokenizer, PNDM scheduler) at toy size: 32 px images (or any multiple of 8),
latents of half that size, a 32-wide text encoder. Weights are random (seeded), so it runs anywhere without downloading anything, and
the very same code paths (loading, fine-tuning, generation, sharding) run on it as on SD 1.5.

>>> from usbench.generators.tiny import save_tiny_sd      # doctest: +SKIP
>>> save_tiny_sd("tiny-sd", size=64)                      # doctest: +SKIP

From the shell: ``usbench model tiny --out tiny-sd --size 64``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

TINY_RESOLUTION = 32
_SPECIAL = ("<|startoftext|>", "<|endoftext|>")


def tiny_tokenizer():
    """A CLIPTokenizer with a byte-level vocabulary and no merges (each character is a token).

    CLIP's byte-to-unicode table gives 256 symbols; each appears plain and with the end-of-word
    marker ``</w>``, so any prompt tokenizes, character by character.
    """
    from transformers import CLIPTokenizer

    symbols = list(_bytes_to_unicode().values())
    vocab_list = symbols + [s + "</w>" for s in symbols] + list(_SPECIAL)
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
        tok = CLIPTokenizer.from_pretrained(
            tmp, bos_token=_SPECIAL[0], eos_token=_SPECIAL[1], pad_token=_SPECIAL[1], unk_token=_SPECIAL[1],
            model_max_length=77,
        )
    return tok


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def tiny_components(seed: int = 0, size: int = TINY_RESOLUTION) -> dict:
    """The modules of a tiny SD pipeline making ``size`` px images, with seeded random weights."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=size // 2,
        in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8,
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        sample_size=size, in_channels=3, out_channels=3, latent_channels=4,
        block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    )
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, projection_dim=32,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ))
    # SD 1.5's own scheduler settings (scaled-linear betas, PNDM without PRK steps).
    scheduler = PNDMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1,
    )
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "scheduler": scheduler}


def tiny_sd_pipeline(seed: int = 0, size: int = TINY_RESOLUTION):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        **tiny_components(seed, size), safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def save_tiny_sd(out: str | Path, seed: int = 0, size: int = TINY_RESOLUTION) -> Path:
    """Write a tiny SD pipeline folder (``save_pretrained`` layout, safetensors) for ``size`` px images
    (``usbench model tiny``). A new or empty folder only: nothing of the user's is overwritten."""
    from usbench.errors import ConfigError, OutputError

    out = Path(out)
    if size < 16 or size % 8:
        raise ConfigError(f"--size must be a multiple of 8, at least 16, got {size}", "e.g. --size 64")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"{out} exists and is not an empty folder", "choose a new folder for --out")
    staged = out.with_name(f".{out.name}.partial")
    if staged.exists():
        import shutil

        shutil.rmtree(staged)
    from usbench.generators.checkpoints import quiet_progress

    quiet_progress()  # no "Writing model shards" bar from diffusers
    tiny_sd_pipeline(seed, size).save_pretrained(staged, safe_serialization=True)
    if out.exists():
        out.rmdir()
    staged.rename(out)
    return out


def tiny_controlnet(unet, seed: int = 0):
    """A ControlNet initialised from ``unet`` (as the recipe does), with a conditioning encoder
    that downsamples by the tiny VAE's factor (2) instead of SD's 8."""
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    return ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32))


__all__ = ["TINY_RESOLUTION", "save_tiny_sd", "tiny_components", "tiny_controlnet", "tiny_sd_pipeline", "tiny_tokenizer"]
