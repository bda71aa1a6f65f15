"""The shared training loop of the recipes: accelerate, checkpoints that resume, EMA, LoRA, the card.

A recipe (``finetune_sd``, ``finetune_controlnet``) supplies a :class:`Task`: the module to
train, how to compute the loss of a batch, and how to save the final model. This module does the
rest, identically for both, and the same code runs one CPU process in the tests or several GPUs
under ``accelerate launch``.

Checkpoints go to ``<out>/checkpoints/step-NNNNNN`` (written to a temporary name and renamed, so
a crash never leaves one that looks complete); ``--resume`` continues from the newest one. Batches,
noise and timesteps are a function of (seed, step, process), so a resumed run trains on exactly
what the uninterrupted run would have.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from usbench.common import SEED_STRIDE, ProgressBar
from usbench.errors import ConfigError, OutputError
from usbench.generators.checkpoints import (
    CARD_FILE, default_checkpoint, folder_digest, out_of_memory_error, prompt_for, read_card, resolve_checkpoint,
)
from usbench.imageset import atomic_write_text


@dataclass
class FinetuneConfig:
    """Hyperparameters; the defaults of ``sd-busi`` are the authors' (``finetune_controlnet`` overrides)."""

    data: str = ""
    base: str = ""
    out: str = ""  # "" = the generator's default location (usbench_cache()/models/<kind>)
    init_from: str = ""  # successive fine-tuning: start from this fine-tuned checkpoint
    lora: int = 0  # LoRA rank; 0 = train the whole network
    steps: int = 20000
    lr: float = 2e-6
    batch_size: int = 2  # per process
    resolution: int = 0  # 0 = the base model's native size (512 for SD 1.5)
    mixed_precision: str = "no"  # no | fp16 | bf16
    ema: bool = False
    ema_decay: float = 0.9999
    gradient_checkpointing: bool = True
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    resume: bool = False
    seed: int = 0
    split: str = "auto"  # auto (paper for BUSI, else seeded) | paper | seeded | none
    test_fraction: float = 0.2
    max_grad_norm: float = 1.0
    progress: bool = True

    def check(self) -> None:
        if not self.data:
            raise ConfigError("fine-tuning needs training data", "pass --data PATH (a BUSI folder or an ImageSet)")
        if not self.base:
            raise ConfigError("fine-tuning needs a base model", "pass --base (a diffusers folder or a hub id in the HF cache)")
        if self.steps < 1 or self.batch_size < 1 or self.checkpoint_every < 1:
            raise ConfigError("--steps, --batch-size and the checkpoint interval must be at least 1", "fix the flag")
        if self.lr <= 0:
            raise ConfigError(f"--lr must be positive, got {self.lr}", "e.g. 2e-6 (the paper's)")
        if self.lora < 0:
            raise ConfigError(f"--lora must be a rank ≥ 1 (or 0 for full fine-tuning), got {self.lora}", "e.g. --lora 8")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ConfigError(f"unknown --mixed-precision {self.mixed_precision!r}", "use no, fp16 or bf16")
        if self.split not in ("auto", "paper", "seeded", "none"):
            raise ConfigError(f"unknown split {self.split!r}", "use auto, paper, seeded or none")


@dataclass
class Task:
    """What a recipe trains. ``loss(batch, generators, weight_dtype, model)`` returns a scalar tensor
    (one generator per sample, for its noise and timestep)."""

    kind: str
    model: Any  # the trained nn.Module (UNet or ControlNet)
    loss: Callable[..., Any]
    save: Callable[[Any, Path], None]  # (unwrapped trained module, folder) → writes the final model
    labels: list[str]
    card: dict[str, Any] = field(default_factory=dict)
    frozen: list[Any] = field(default_factory=list)  # modules moved to the device, not trained


@dataclass
class TrainResult:
    out: Path
    steps: int
    losses: list[float]  # one per step, including steps done before a resume
    resumed_from: int


def latest_checkpoint(out: Path) -> Path | None:
    ckpts = sorted((out / "checkpoints").glob("step-[0-9]*")) if (out / "checkpoints").is_dir() else []
    ckpts = [c for c in ckpts if c.is_dir() and (c / "train_state.json").is_file()]
    return ckpts[-1] if ckpts else None


def prepare_out(cfg: FinetuneConfig, kind: str) -> Path:
    out = Path(cfg.out).expanduser() if cfg.out else default_checkpoint(kind)
    has_ckpt = latest_checkpoint(out) is not None
    if not cfg.resume:
        if has_ckpt:
            raise OutputError(f"{out} holds checkpoints of an earlier run", "pass --resume to continue it, or choose another --out")
        if (out / CARD_FILE).exists() or (out / "model_index.json").exists():
            raise OutputError(f"{out} already holds a model", "choose another --out, or delete the folder")
    from usbench.imageset import ensure_writable_dir

    return ensure_writable_dir(out)


def make_accelerator(cfg: FinetuneConfig, out: Path):
    import torch
    from accelerate import Accelerator

    from usbench.generators.sharding import launched

    try:  # several processes without CUDA (tests, CPU clusters): gloo on CPU
        return Accelerator(mixed_precision=cfg.mixed_precision, project_dir=str(out),
                           cpu=launched() and not torch.cuda.is_available())
    except ValueError as exc:  # e.g. fp16 asked for on a CPU
        raise ConfigError(f"--mixed-precision {cfg.mixed_precision} is not available here ({exc})", "use --mixed-precision no or bf16") from None


def weight_dtype(accelerator):
    import torch

    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)


def add_lora(module, rank: int, seed: int):
    """Add a LoRA adapter (peft) on the attention projections; only its weights will train."""
    import torch
    from peft import LoraConfig

    module.requires_grad_(False)
    torch.manual_seed(seed)
    module.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                  target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    return [p for p in module.parameters() if p.requires_grad]


def lora_state_dict(module) -> dict:
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    return convert_state_dict_to_diffusers(get_peft_model_state_dict(module))


def sample_generator(seed: int, position: int):
    """Noise and timestep of the sample at global ``position`` (step, process and slot in one number):
    reproducible across resumes and the same on any number of processes."""
    import torch

    return torch.Generator().manual_seed(int(seed) * SEED_STRIDE + int(position))


def run_training(cfg: FinetuneConfig, out: Path, accelerator, task: Task, data, trainable: list) -> TrainResult:
    """The loop: optimise ``trainable`` for ``cfg.steps`` steps, checkpoint, resume, save, write the card."""
    import torch

    model = task.model
    if cfg.gradient_checkpointing and hasattr(model, "enable_gradient_checkpointing"):
        model.enable_gradient_checkpointing()
    dtype = weight_dtype(accelerator)
    for m in task.frozen:
        _move(m, accelerator.device, dtype)
    if cfg.lora:  # frozen base weights in half precision, adapter in fp32
        _move(model, accelerator.device, dtype)
        for p in trainable:
            p.data = p.data.float()
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    model, optimizer = accelerator.prepare(model, optimizer)
    ema = None
    if cfg.ema:
        from diffusers.training_utils import EMAModel

        ema = EMAModel(trainable, decay=cfg.ema_decay)
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)

    start, losses = 0, []
    ckpt = latest_checkpoint(out) if cfg.resume else None
    if ckpt is not None:
        accelerator.load_state(str(ckpt))
        state = json.loads((ckpt / "train_state.json").read_text())
        start, losses = int(state["step"]), list(state["losses"])
        if ema is not None:
            ema.to(accelerator.device)
    resumed_from = start

    bar = ProgressBar(cfg.steps, f"fine-tuning {task.kind}", cfg.progress and accelerator.is_main_process, completed=start,
                      extra_columns=("loss {task.fields[loss]}",), loss="-")
    try:
        for step in range(start + 1, cfg.steps + 1):
            batch = data.batch(step, cfg.batch_size, accelerator.process_index, accelerator.num_processes)
            gens = [sample_generator(cfg.seed, s.position) for s in batch]
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    loss = task.loss(batch, gens, dtype, model)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(trainable, cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.step(trainable)
            losses.append(float(accelerator.gather(loss.detach().float().reshape(1)).mean()))
            bar.advance(loss=f"{losses[-1]:.4f}")
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                save_checkpoint(accelerator, out, step, losses, cfg.keep_checkpoints)
    except torch.cuda.OutOfMemoryError as exc:
        raise out_of_memory_error(exc, f"fine-tuning {task.kind}", cfg.batch_size) from None
    finally:
        bar.close()

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        final = accelerator.unwrap_model(model)
        if ema is not None:
            ema.store(trainable)
            ema.copy_to(trainable)
        final_dir = out / ".final.partial"
        if final_dir.exists():
            shutil.rmtree(final_dir)
        final_dir.mkdir()
        task.save(final, final_dir)
        card = _card(cfg, out, task, data, losses, accelerator)
        publish(final_dir, out)
        from usbench.recipes.card import write_model_card

        write_model_card(out, card)
        if ema is not None:
            ema.restore(trainable)
    accelerator.wait_for_everyone()
    return TrainResult(out=out, steps=cfg.steps, losses=losses, resumed_from=resumed_from)


def _fp32(module):
    """The module in fp32 for saving (a no-op, and no diffusers warning, when it already is)."""
    import torch

    return module if next(module.parameters()).dtype == torch.float32 else module.to(torch.float32)


def _move(module, device, dtype) -> None:
    import torch

    module.to(device) if dtype == torch.float32 else module.to(device, dtype=dtype)


def save_checkpoint(accelerator, out: Path, step: int, losses: list[float], keep: int) -> Path:
    """``accelerator.save_state`` to a temporary folder, then rename: complete or absent."""
    final = out / "checkpoints" / f"step-{step:06d}"
    tmp = out / "checkpoints" / f".step-{step:06d}.partial"
    if accelerator.is_main_process:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        atomic_write_text(tmp / "train_state.json", json.dumps({"step": step, "losses": losses}))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        for old in sorted((out / "checkpoints").glob("step-[0-9]*"))[:-max(1, keep)]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def publish(staged: Path, out: Path) -> None:
    """Move the staged model into ``out``: configs and weights first, ``model_index.json`` last."""
    items = sorted(staged.iterdir(), key=lambda p: p.name == "model_index.json")
    for item in items:
        target = out / item.name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        item.rename(target)
    staged.rmdir()


def _card(cfg: FinetuneConfig, out: Path, task: Task, data, losses: list[float], accelerator) -> dict[str, Any]:
    tail = losses[-min(len(losses), 50):]
    hp = asdict(cfg)
    for k in ("data", "base", "out", "init_from", "resume", "progress"):
        hp.pop(k)
    hp["resolution"] = data.resolution
    card = {
        "kind": task.kind,
        "base": _where(cfg.init_from if (cfg.lora and cfg.init_from) else cfg.base),
        "init_from": _where(cfg.init_from),
        "lora_rank": cfg.lora,
        "labels": task.labels,
        "prompts": [prompt_for(l) for l in task.labels],
        "resolution": data.resolution,
        "steps": len(losses),
        "final_loss": float(sum(tail) / len(tail)) if tail else math.nan,
        "first_loss": float(losses[0]) if losses else math.nan,
        "num_processes": accelerator.num_processes,
        "hyperparameters": hp,
        "out": str(out),
    }
    card.update(task.card)
    return card


def _where(model: str) -> str:
    """A local folder as an absolute path (the card must still point to it from elsewhere); hub ids as given."""
    if not model:
        return ""
    p = Path(model).expanduser()
    return str(p.resolve()) if p.exists() else model


def data_card(path: str, train_set, full_set, the_split) -> dict[str, Any]:
    return {
        "data": {"path": str(path), "name": full_set.name, "content_hash": full_set.content_hash(),
                 "train_content_hash": train_set.content_hash(), "n_total": len(full_set), "n_train": len(train_set),
                 "train_counts": train_set.counts()},
        "split": None if the_split is None else {
            "scheme": the_split.scheme, "seed": the_split.seed, "n_test": len(the_split.test),
            "test_ids": the_split.test.ids,
        },
    }


def parent_card(init_from: str, kind: str) -> tuple[dict | None, str]:
    """The card of the checkpoint a successive fine-tuning starts from, and that checkpoint's digest."""
    if not init_from:
        return None, ""
    folder = resolve_checkpoint(init_from, kind)
    return read_card(folder), folder_digest(folder)
