"""Test helper: write a diffusers SD pipeline as one original-layout (LDM) ``.safetensors`` file,
the format of the authors' ``v1-5-pruned`` checkpoint, so the single-file route is tested on a
tiny model. The key mapping is the inverse of diffusers' own ``convert_ldm_*_checkpoint``
(generalised from diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py to any
number of blocks and layers); the test checks it by converting back with diffusers.
"""

from __future__ import annotations

from pathlib import Path

_RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"), ("conv2", "out_layers.3"),
           ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection")]
_VAE_RESNET = [("conv_shortcut", "nin_shortcut")]
_VAE_ATTN = [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]


def _rename(key: str, pairs) -> str:
    for new, old in pairs:
        key = key.replace(f".{new}.", f".{old}.")
    return key


def unet_to_ldm(state: dict, config) -> dict:
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    static = DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"]
    L = config.layers_per_block
    n = len(config.block_out_channels)
    prefixes = []  # (diffusers prefix, ldm prefix)
    for i in range(n):
        for j in range(L):
            prefixes.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{(L + 1) * i + j + 1}.0."))
            prefixes.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{(L + 1) * i + j + 1}.1."))
        prefixes.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(L + 1) * (i + 1)}.0.op."))
        has_attn = "CrossAttn" in config.up_block_types[i]
        for j in range(L + 1):
            prefixes.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{(L + 1) * i + j}.0."))
            prefixes.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{(L + 1) * i + j}.1."))
        prefixes.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{(L + 1) * i + L}.{2 if has_attn else 1}."))
    prefixes += [("mid_block.attentions.0.", "middle_block.1."), ("mid_block.resnets.0.", "middle_block.0."),
                 ("mid_block.resnets.1.", "middle_block.2.")]
    out = {}
    for key, value in state.items():
        if key in static:
            out[static[key]] = value
            continue
        for d, l in prefixes:
            if key.startswith(d):
                rest = "." + key[len(d):]
                out[l + (_rename(rest, _RESNET) if ".resnets." in d else rest)[1:]] = value
                break
        else:
            raise KeyError(f"unmapped UNet key {key}")
    return {"model.diffusion_model." + k: v for k, v in out.items()}


def vae_to_ldm(state: dict, config) -> dict:
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    static = DIFFUSERS_TO_LDM_MAPPING["vae"]
    n = len(config.block_out_channels)
    prefixes = []
    for i in range(n):
        for j in range(config.layers_per_block + 1):
            prefixes.append((f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}."))
            prefixes.append((f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{n - 1 - i}.block.{j}."))
        prefixes.append((f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample."))
        prefixes.append((f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{n - 1 - i}.upsample."))
    for part in ("encoder", "decoder"):
        prefixes += [(f"{part}.mid_block.resnets.0.", f"{part}.mid.block_1."), (f"{part}.mid_block.resnets.1.", f"{part}.mid.block_2."),
                     (f"{part}.mid_block.attentions.0.", f"{part}.mid.attn_1.")]
    out = {}
    for key, value in state.items():
        if key in static:
            out[static[key]] = value
            continue
        for d, l in prefixes:
            if key.startswith(d):
                rest = "." + key[len(d):]
                if ".attentions." in d:
                    rest = _rename(rest, _VAE_ATTN)
                    if value.ndim == 2:  # LDM's attention projections are 1×1 convolutions
                        value = value[:, :, None, None]
                else:
                    rest = _rename(rest, _VAE_RESNET)
                out[l + rest[1:]] = value
                break
        else:
            raise KeyError(f"unmapped VAE key {key}")
    return {"first_stage_model." + k: v for k, v in out.items()}


def write_single_file(pipe, path: Path) -> Path:
    """``pipe`` (a StableDiffusionPipeline) as one LDM-layout safetensors file."""
    from safetensors.torch import save_file

    state = {}
    state.update(unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config))
    state.update(vae_to_ldm(pipe.vae.state_dict(), pipe.vae.config))
    for k, v in pipe.text_encoder.state_dict().items():  # LDM: the whole HF CLIPTextModel under cond_stage_model.transformer.
        state["cond_stage_model.transformer." + (k if k.startswith("text_model.") else "text_model." + k)] = v
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path
