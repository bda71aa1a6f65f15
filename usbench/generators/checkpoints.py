"""Diffusion checkpoints: where they live, what kind they are, and loading them.

A checkpoint is a folder in diffusers' ``save_pretrained`` layout (``model_index.json`` plus one
subfolder per component), a hub id already in the Hugging Face cache, or a LoRA adapter folder
(``pytorch_lora_weights.safetensors``) whose model card names its base. ``usbench finetune`` writes
a model card (:data:`CARD_FILE`) into every folder it makes; the generators read the labels from it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from usbench.errors import ConfigError, UsbenchError, WeightsError
from usbench.imageset import atomic_write_text, sha256_file
from usbench.weights import offline, usbench_cache

CARD_FILE = "usbench-model-card.json"
LORA_FILE = "pytorch_lora_weights.safetensors"
PROMPT_TEMPLATE = "Ultrasound image of {label} breast"
PAPER_LABELS = ("benign", "malignant", "normal")
SD_KIND, CONTROLNET_KIND = "sd-busi", "controlnet-busi"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt")


class OutOfMemory(UsbenchError):
    """The accelerator ran out of memory; the message says which knobs lower the need."""


def prompt_for(label: str) -> str:
    """The paper's prompt, exactly: ``Ultrasound image of benign breast``."""
    return PROMPT_TEMPLATE.format(label=label)


def default_checkpoint(kind: str) -> Path:
    """Where ``usbench finetune <kind>`` writes by default, and where the generator looks first."""
    return usbench_cache() / "models" / kind


def out_of_memory_error(exc: BaseException, doing: str, batch_size: int | None = None) -> OutOfMemory:
    """Translate ``torch.cuda.OutOfMemoryError`` into one actionable line."""
    lower = f"lower the batch size (now {batch_size})" if batch_size else "lower the batch size"
    return OutOfMemory(
        f"out of GPU memory while {doing}",
        f"{lower}, use half precision (dtype fp16/bf16 or --mixed-precision fp16), or for fine-tuning "
        "train a LoRA adapter (--lora 8) with --batch-size 1",
    )


# ------------------------------------------------------------------------------------------------
# Finding and checking a checkpoint folder


def resolve_checkpoint(model: str, kind: str) -> Path:
    """Turn the ``model`` config value (folder, hub id or empty = default location) into a folder."""
    if not model:
        path = default_checkpoint(kind)
        if not path.exists():
            raise WeightsError(
                f"no {kind} checkpoint at the default location {path}",
                f"make one with `usbench finetune {kind} --data DATA --base "
                f"{'SD15_DIR_OR_ID' if kind == SD_KIND else 'FINETUNED_SD'}`, copy a diffusers folder there, "
                f"or set the generator's config key model = \"/path/to/checkpoint\"",
            )
        return path
    path = Path(model).expanduser()
    if path.exists():
        return path
    if _looks_like_hub_id(model):
        return hub_snapshot(model)
    raise WeightsError(
        f"{kind} checkpoint {path} does not exist",
        f"check the config key model, or make one with `usbench finetune {kind} --data DATA --base ...`",
    )


def _looks_like_hub_id(model: str) -> bool:
    parts = model.split("/")
    return len(parts) == 2 and all(parts) and not model.startswith((".", "~")) and os.sep not in model.replace("/", "")


def hub_snapshot(repo_id: str) -> Path:
    """The local snapshot of a hub repo: from the HF cache only when offline (HF_HUB_OFFLINE)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(
            repo_id, local_files_only=offline(), cache_dir=hf_hub_cache(),
            allow_patterns=["model_index.json", "*/config.json", "*/*_config.json", "*/*.txt", "*/vocab.json",
                            "*/tokenizer.json", "*/diffusion_pytorch_model.safetensors", "*/model.safetensors",
                            LORA_FILE, CARD_FILE],
        ))
    except Exception as exc:  # offline and not cached, unknown repo, no network
        raise WeightsError(
            f"{repo_id} is neither a folder nor in the Hugging Face cache ({type(exc).__name__})",
            "download it once online (huggingface-cli download " + repo_id + "), or pass a local folder",
        ) from None


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache as the environment says now (huggingface_hub reads it only at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface"
    return Path(home).expanduser() / "hub"


def read_card(folder: Path) -> dict[str, Any] | None:
    card = Path(folder) / CARD_FILE
    if not card.is_file():
        return None
    try:
        return json.loads(card.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise WeightsError(f"model card {card} is not valid JSON", "restore it from the training run or delete it") from None


def write_card(folder: Path, card: dict[str, Any]) -> None:
    atomic_write_text(Path(folder) / CARD_FILE, json.dumps(card, indent=2, sort_keys=True, default=str) + "\n")


def checkpoint_kind(folder: Path) -> str:
    """``sd``, ``controlnet-pipeline``, ``controlnet-model``, ``lora`` or ``unknown``."""
    folder = Path(folder)
    index = folder / "model_index.json"
    if index.is_file():
        cls = _json(index).get("_class_name", "")
        if "ControlNet" in cls:
            return "controlnet-pipeline"
        return "sd"
    if (folder / LORA_FILE).is_file():
        return "lora"
    config = folder / "config.json"
    if config.is_file() and _json(config).get("_class_name") == "ControlNetModel":
        return "controlnet-model"
    return "unknown"


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise WeightsError(f"{path} is not valid JSON", "the checkpoint is corrupt; copy it again") from None


def check_checkpoint(folder: Path, kind: str) -> str:
    """Check that ``folder`` is a complete checkpoint usable by generator ``kind``; return its kind."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightsError(f"{kind} checkpoint {folder} is not a folder", "pass a diffusers pipeline folder (save_pretrained layout)")
    found = checkpoint_kind(folder)
    if kind == SD_KIND and found.startswith("controlnet"):
        raise WeightsError(
            f"{folder} is a ControlNet checkpoint, not a Stable Diffusion one",
            "use it with --generator controlnet-busi, or give sd-busi the fine-tuned SD folder",
        )
    if kind == CONTROLNET_KIND and found in ("sd", "lora"):
        raise WeightsError(
            f"{folder} is a Stable Diffusion checkpoint without a ControlNet",
            f"train one with `usbench finetune controlnet-busi --data DATA --base {folder}`, or use --generator sd-busi",
        )
    if found == "unknown":
        raise WeightsError(
            f"{folder} is not a diffusers checkpoint (no model_index.json, ControlNet config.json or {LORA_FILE})",
            "point to the folder written by `usbench finetune` or by diffusers' save_pretrained",
        )
    if found in ("sd", "controlnet-pipeline"):
        index = _json(folder / "model_index.json")
        needed = ["unet", "vae", "text_encoder", "tokenizer", "scheduler"] + (["controlnet"] if found != "sd" else [])
        for comp in needed:
            entry = index.get(comp)
            if not entry or entry[0] is None:
                raise WeightsError(f"incomplete checkpoint {folder}: model_index.json has no {comp}", "copy the whole folder again")
            _check_component(folder / comp, comp)
    elif found == "controlnet-model":
        _check_component(folder, "controlnet")
    return found


def _check_component(sub: Path, comp: str) -> None:
    if not sub.is_dir():
        raise WeightsError(f"incomplete checkpoint: {sub} is missing", "copy the whole checkpoint folder again")
    if comp == "tokenizer":
        if not any((sub / f).is_file() for f in ("tokenizer.json", "vocab.json")):
            raise WeightsError(f"incomplete checkpoint: {sub} has no tokenizer.json or vocab.json", "copy the whole folder again")
        return
    if comp == "scheduler":
        if not (sub / "scheduler_config.json").is_file():
            raise WeightsError(f"incomplete checkpoint: {sub} has no scheduler_config.json", "copy the whole folder again")
        return
    if not (sub / "config.json").is_file():
        raise WeightsError(f"incomplete checkpoint: {sub} has no config.json", "copy the whole folder again")
    if not any(p.suffix in _WEIGHT_SUFFIXES and p.stat().st_size > 0 for p in sub.iterdir()):
        raise WeightsError(f"incomplete checkpoint: {sub} has no weights file", "copy the whole folder again (the .safetensors is missing)")


# ------------------------------------------------------------------------------------------------
# Identity: sha256 of every file, cached by (path, size, mtime) because SD weights are gigabytes


def folder_digest(folder: Path) -> str:
    """sha256 over the relative path and sha256 of every file of ``folder`` (checkpoints/ excluded)."""
    import hashlib

    folder = Path(folder)
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if not p.is_file() or rel.parts[0] in ("checkpoints", ".cache") or p.name == "README.md":
            continue
        h.update(f"{rel.as_posix()}\0{_cached_sha256(p)}\n".encode())
    return h.hexdigest()


def _cached_sha256(path: Path) -> str:
    st = path.stat()
    if st.st_size < (1 << 24):
        return sha256_file(path)
    index = usbench_cache() / "sha256-index.json"
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    try:
        known = json.loads(index.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        known[key] = sha256_file(path)
        try:
            index.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(index, json.dumps(known))
        except OSError:
            pass  # a read-only cache only costs time
    return known[key]


# ------------------------------------------------------------------------------------------------
# Loading


def torch_dtype(name: str):
    import torch

    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if name not in table:
        raise ConfigError(f"unknown dtype {name!r}", "use fp32, fp16 or bf16")
    return table[name]


def pick_device(name: str) -> str:
    import torch

    if name != "auto":
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device {name} asked for but CUDA is not available", "use device = \"cpu\" or \"auto\"")
        return name
    if torch.cuda.is_available():  # under accelerate launch, each process its own GPU
        return f"cuda:{os.environ['LOCAL_RANK']}" if "LOCAL_RANK" in os.environ else "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _dtype_kw(td) -> dict:
    """diffusers renamed ``torch_dtype`` to ``dtype`` (0.36); pass whichever this version takes."""
    import diffusers

    quiet_progress()
    major, minor = (int(x) for x in diffusers.__version__.split(".")[:2])
    return {"dtype": td} if (major, minor) >= (0, 36) else {"torch_dtype": td}


def quiet_progress() -> None:
    """No per-component loading bars from diffusers/transformers: usbench draws its own."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.disable_progress_bar()
    tlog.disable_progress_bar()


def lora_base(folder: Path, override: str = "") -> str:
    """The base model of a LoRA folder: the ``base`` config key, else the one its model card names."""
    if override:
        return override
    card = read_card(folder) or {}
    base = card.get("base", "")
    if not base:
        raise WeightsError(f"LoRA adapter {folder} does not say which base model it adapts", "set the config key base = \"/path/to/sd\"")
    return base


def load_sd_pipeline(model: str | Path, dtype: str = "fp32", base: str = "", fuse_lora: bool = True):
    """A StableDiffusionPipeline from a full folder, a hub id, or a LoRA folder on top of its base."""
    from diffusers import StableDiffusionPipeline

    folder = resolve_checkpoint(str(model), SD_KIND)
    found = check_checkpoint(folder, SD_KIND)
    td = torch_dtype(dtype)
    if found == "lora":
        base_folder = resolve_checkpoint(lora_base(folder, base), SD_KIND)
        if check_checkpoint(base_folder, SD_KIND) == "lora":
            raise WeightsError(f"the base of LoRA {folder} is itself a LoRA adapter", "fuse it first or point base to a full SD folder")
        pipe = StableDiffusionPipeline.from_pretrained(base_folder, **_dtype_kw(td), safety_checker=None, requires_safety_checker=False)
        pipe.load_lora_weights(str(folder), weight_name=LORA_FILE, adapter_name="usbench")
        if fuse_lora:
            pipe.fuse_lora()
            pipe.unload_lora_weights()
        return pipe
    return StableDiffusionPipeline.from_pretrained(folder, **_dtype_kw(td), safety_checker=None, requires_safety_checker=False)


def load_controlnet_pipeline(model: str | Path, dtype: str = "fp32", base: str = ""):
    """A StableDiffusionControlNetPipeline from a full folder, or a ControlNet model plus its base SD."""
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

    folder = resolve_checkpoint(str(model), CONTROLNET_KIND)
    found = check_checkpoint(folder, CONTROLNET_KIND)
    td = torch_dtype(dtype)
    if found == "controlnet-model":
        base = base or (read_card(folder) or {}).get("base", "")
        if not base:
            raise WeightsError(f"ControlNet {folder} needs its base Stable Diffusion", "set the config key base = \"/path/to/finetuned-sd\"")
        sd = load_sd_pipeline(base, dtype)
        controlnet = ControlNetModel.from_pretrained(folder, **_dtype_kw(td))
        return StableDiffusionControlNetPipeline(**sd.components | {"controlnet": controlnet})
    return StableDiffusionControlNetPipeline.from_pretrained(folder, **_dtype_kw(td), safety_checker=None, requires_safety_checker=False)


def set_scheduler(pipe, name: str) -> None:
    """Swap the sampler: ``pndm`` (PLMS, the paper's SD sampler), ``ddim`` (the paper's ControlNet
    sampler), ``dpm++`` (DPM-Solver++ multistep, good in 20 steps), ``euler``."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler, PNDMScheduler

    config = pipe.scheduler.config
    if name == "pndm":
        pipe.scheduler = PNDMScheduler.from_config(config, skip_prk_steps=True)
    elif name == "ddim":  # SD's latents are not in [-1, 1]: never clip them (diffusers' default would)
        pipe.scheduler = DDIMScheduler.from_config(config, **({} if "clip_sample" in config else {"clip_sample": False}))
    elif name == "dpm++":
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++")
    elif name == "euler":
        pipe.scheduler = EulerDiscreteScheduler.from_config(config)
    else:
        raise ConfigError(f"unknown scheduler {name!r}", "use pndm (PLMS), ddim, dpm++ or euler")


SCHEDULERS = ("pndm", "ddim", "dpm++", "euler")
