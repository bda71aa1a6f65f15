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
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
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
    base_config: str = ""  # a single-file --base: the folder or hub id of its diffusers configs (default SD 1.5's)
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
    gradient_accumulation: int = 1  # micro-batches per optimiser step (effective batch = batch_size × this × processes)
    lr_scheduler: str = "constant"  # any of diffusers.optimization.get_scheduler's names
    lr_warmup_steps: int = 0
    snr_gamma: float = 0.0  # Min-SNR-γ loss weighting (Hang et al. 2023); 0 = off, 5 is the paper's value
    noise_offset: float = 0.0  # offset noise (Guttenberg 2023); 0 = off, e.g. 0.05
    empty_prompt_rate: float = 0.0  # share of samples trained with the empty prompt (for classifier-free guidance)
    validation_every: int = 0  # write one sample image per label every N steps (0 = off)
    validation_steps: int = 20  # sampling steps of those images
    tensorboard: bool = False  # log loss and lr with TensorBoard to <out>/logs
    use_8bit_adam: bool = False  # bitsandbytes' AdamW8bit (CUDA only)
    override: bool = False  # with resume: take changed hyperparameters instead of refusing them
    progress: bool = True
    explicit: tuple = ()  # names of the settings the user gave (the rest are defaults); filled by recipe_config

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
        if self.gradient_accumulation < 1 or self.keep_checkpoints < 1 or self.lr_warmup_steps < 0 or self.validation_every < 0:
            raise ConfigError("--gradient-accumulation and --keep-checkpoints must be at least 1, warm-up and "
                              "validation intervals at least 0", "fix the flag")
        if self.snr_gamma < 0 or self.noise_offset < 0 or not 0 <= self.empty_prompt_rate < 1:
            raise ConfigError("--snr-gamma and --noise-offset must be ≥ 0 and --empty-prompt-rate in [0, 1)", "e.g. --snr-gamma 5")
        from diffusers.optimization import SchedulerType

        names = [t.value for t in SchedulerType]
        if self.lr_scheduler not in names:
            raise ConfigError(f"unknown --lr-scheduler {self.lr_scheduler!r}", f"use one of {', '.join(names)}")
        if self.use_8bit_adam:
            import torch

            if not torch.cuda.is_available():
                raise ConfigError("--use-8bit-adam needs a CUDA GPU (bitsandbytes' 8-bit optimisers)", "drop --use-8bit-adam on CPU")
            try:
                import bitsandbytes  # noqa: F401
            except ImportError:
                raise ConfigError("--use-8bit-adam needs bitsandbytes", "pip install bitsandbytes") from None


# Settings that change what a resumed run computes: a resume must keep them (or be told to override).
RESUME_LOCKED = ("lora", "lr", "batch_size", "resolution", "mixed_precision", "ema", "ema_decay", "seed", "split",
                 "test_fraction", "max_grad_norm", "gradient_accumulation", "lr_scheduler", "lr_warmup_steps",
                 "snr_gamma", "noise_offset", "empty_prompt_rate", "use_8bit_adam")


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
    frozen: dict[str, Any] = field(default_factory=dict)  # name -> module moved to the device, not trained
    validate: Callable[[Any, Path, int], None] | None = None  # (unwrapped model, folder, sampling steps) → images


@dataclass
class TrainResult:
    out: Path
    steps: int
    losses: list[float]  # one per step, including steps done before a resume
    resumed_from: int

    @property
    def final_loss(self) -> float:
        """The mean of the last 50 steps' losses (the model card's ``final_loss``)."""
        tail = self.losses[-min(len(self.losses), 50):]
        return float(sum(tail) / len(tail)) if tail else math.nan


def latest_checkpoint(out: Path) -> Path | None:
    ckpts = sorted((out / "checkpoints").glob("step-[0-9]*")) if (out / "checkpoints").is_dir() else []
    ckpts = [c for c in ckpts if c.is_dir() and (c / "train_state.json").is_file()]
    return ckpts[-1] if ckpts else None


def output_folder(cfg: FinetuneConfig, kind: str) -> Path:
    """The output folder, checked: a finished model or an earlier run's checkpoints are never overwritten silently."""
    out = Path(cfg.out).expanduser() if cfg.out else default_checkpoint(kind)
    has_ckpt = latest_checkpoint(out) is not None
    if not cfg.resume:
        if has_ckpt:
            raise OutputError(f"{out} holds checkpoints of an earlier run", "pass --resume to continue it, or choose another --out")
        if (out / CARD_FILE).exists() or (out / "model_index.json").exists():
            raise OutputError(f"{out} already holds a model", "choose another --out, or delete the folder")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file", "choose a folder name for --out")
    return out


@contextmanager
def owned_output(out: Path):
    """Create ``out`` for a run; on an error remove what this run created in it, unless a resumable
    checkpoint was written (then ``--resume`` continues)."""
    from usbench.imageset import ensure_writable_dir

    before = set(out.iterdir()) if out.is_dir() else None
    ensure_writable_dir(out)
    try:
        yield out
    except BaseException:
        if latest_checkpoint(out) is None:
            if before is None:
                shutil.rmtree(out, ignore_errors=True)
            else:
                for p in set(out.iterdir()) - before:
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        raise


def resume_settings(cfg: FinetuneConfig, out: Path) -> tuple[FinetuneConfig, dict[str, Any] | None]:
    """With ``--resume``: the settings of the checkpoint for everything the user did not set, and a
    refusal for what the user changed (unless ``--override``). Returns the config to run and what was done."""
    ckpt = latest_checkpoint(out) if cfg.resume else None
    if ckpt is None:
        return cfg, None
    state = json.loads((ckpt / "train_state.json").read_text())
    saved = state.get("hyperparameters")
    record: dict[str, Any] = {"from_step": int(state["step"]), "inherited": {}, "overridden": {}}
    if saved is None:  # a checkpoint of usbench ≤ 0.1: nothing to compare with
        record["unchecked"] = True
        return cfg, record
    changes = {}
    for key in RESUME_LOCKED:
        if key not in saved or saved[key] == getattr(cfg, key):
            continue
        if key in cfg.explicit:
            record["overridden"][key] = {"checkpoint": saved[key], "now": getattr(cfg, key)}
        else:
            record["inherited"][key] = saved[key]
            changes[key] = saved[key]
    if record["overridden"] and not cfg.override:
        what = ", ".join(f"--{k.replace('_', '-')} {v['now']} (checkpoint: {v['checkpoint']})" for k, v in record["overridden"].items())
        raise ConfigError(f"--resume with changed settings: {what}",
                          "drop those flags to continue as the checkpoint was trained, or add --override to change them")
    return replace(cfg, **changes), record


def hyperparameters(cfg: FinetuneConfig) -> dict[str, Any]:
    return {k: getattr(cfg, k) for k in RESUME_LOCKED}


def make_accelerator(cfg: FinetuneConfig, out: Path):
    import torch
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    from usbench.generators.sharding import launched

    from accelerate.state import AcceleratorState, GradientState

    # accelerate keeps its state per process: a second run in one process (a notebook, the tests)
    # with another precision or accumulation would be refused. The process group stays.
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    if cfg.mixed_precision == "fp16" and not torch.cuda.is_available():  # CPU autocast has no fp16: a dtype error mid-step
        raise ConfigError("--mixed-precision fp16 needs a CUDA GPU", "on a CPU use --mixed-precision bf16 (or no)")
    try:  # several processes without CUDA (tests, CPU clusters): gloo on CPU
        return Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.gradient_accumulation,
                           project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
                           log_with="tensorboard" if cfg.tensorboard else None,
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


def run_training(cfg: FinetuneConfig, out: Path, accelerator, task: Task, data, trainable: list,
                 resumed: dict[str, Any] | None = None) -> TrainResult:
    """The loop: optimise ``trainable`` for ``cfg.steps`` optimiser steps (each of
    ``cfg.gradient_accumulation`` micro-batches), checkpoint, resume, validate, save, write the card."""
    import torch

    model = task.model
    if cfg.gradient_checkpointing and hasattr(model, "enable_gradient_checkpointing"):
        model.enable_gradient_checkpointing()
    dtype = weight_dtype(accelerator)
    # Frozen modules run in half precision under mixed precision, but are saved from fp32 master
    # copies: the saved base is the base, bit for bit.
    masters = {name: _state_copy(m) for name, m in task.frozen.items()} if dtype != torch.float32 else {}
    task.card["frozen_sha256"] = {name: tensors_digest(m.state_dict()) for name, m in task.frozen.items()}
    for m in task.frozen.values():
        _move(m, accelerator.device, dtype)
    if cfg.lora:  # frozen base weights in half precision, adapter in fp32
        _move(model, accelerator.device, dtype)
        for p in trainable:
            p.data = p.data.float()
    optimizer = make_optimizer(cfg, trainable)
    from diffusers.optimization import get_scheduler

    lr_scheduler = get_scheduler(cfg.lr_scheduler, optimizer, num_warmup_steps=cfg.lr_warmup_steps, num_training_steps=cfg.steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    if cfg.lora:
        _adapter_only_checkpoints(accelerator)
    ema = None
    if cfg.ema:
        from diffusers.training_utils import EMAModel

        ema = EMAModel(trainable, decay=cfg.ema_decay)
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)
    accelerator.register_for_checkpointing(lr_scheduler)  # stepped by hand, once per optimiser step
    logger = _tensorboard(cfg, out, accelerator)

    start, losses = 0, []
    ckpt = latest_checkpoint(out) if cfg.resume else None
    if ckpt is not None:
        accelerator.load_state(str(ckpt))
        state = json.loads((ckpt / "train_state.json").read_text())
        start, losses = int(state["step"]), list(state["losses"])
        if ema is not None:
            ema.to(accelerator.device)
    resumed_from = start
    hp = hyperparameters(cfg)

    bar = ProgressBar(cfg.steps, f"fine-tuning {task.kind}", cfg.progress and accelerator.is_main_process, completed=start,
                      extra_columns=("loss {task.fields[loss]}",), loss="-")
    k = cfg.gradient_accumulation
    try:
        for step in range(start + 1, cfg.steps + 1):
            micro_losses = []
            for j in range(k):  # micro-batch (step-1)·k + j + 1: k micro-batches of b are the samples of one batch of k·b
                batch = data.batch((step - 1) * k + j + 1, cfg.batch_size, accelerator.process_index, accelerator.num_processes)
                gens = [sample_generator(cfg.seed, s.position) for s in batch]
                with accelerator.accumulate(model):
                    with accelerator.autocast():
                        loss = task.loss(batch, gens, dtype, model)
                    accelerator.backward(loss)  # divided by k by accelerate
                    if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(trainable, cfg.max_grad_norm)
                    optimizer.step()  # a no-op until the k-th micro-batch
                    optimizer.zero_grad(set_to_none=True)
                micro_losses.append(loss.detach().float())
            lr_scheduler.step()
            if ema is not None:
                ema.step(trainable)
            losses.append(float(accelerator.gather(torch.stack(micro_losses).mean().reshape(1)).mean()))
            bar.advance(loss=f"{losses[-1]:.4f}")
            if logger is not None:
                logger.log({"loss": losses[-1], "lr": lr_scheduler.get_last_lr()[0]}, step=step)
            if cfg.validation_every and step % cfg.validation_every == 0 and task.validate and accelerator.is_main_process:
                with accelerator.autocast():
                    task.validate(accelerator.unwrap_model(model), out / "validation" / f"step-{step:06d}", cfg.validation_steps)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                save_checkpoint(accelerator, out, step, losses, cfg.keep_checkpoints, hp)
    except torch.cuda.OutOfMemoryError as exc:
        raise out_of_memory_error(exc, f"fine-tuning {task.kind}", cfg.batch_size) from None
    finally:
        bar.close()
        if logger is not None:
            accelerator.end_training()

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        final = accelerator.unwrap_model(model)
        if ema is not None:
            ema.store(trainable)
            ema.copy_to(trainable)
        for name, m in task.frozen.items():
            if name in masters:
                m.to(torch.float32).load_state_dict(masters[name])
        final_dir = out / ".final.partial"
        if final_dir.exists():
            shutil.rmtree(final_dir)
        final_dir.mkdir()
        task.save(final, final_dir)
        card = _card(cfg, out, task, data, losses, accelerator)
        if resumed:
            card["resume"] = resumed
        publish(final_dir, out)
        from usbench.recipes.card import write_model_card

        write_model_card(out, card)
        if ema is not None:
            ema.restore(trainable)
    accelerator.wait_for_everyone()
    return TrainResult(out=out, steps=cfg.steps, losses=losses, resumed_from=resumed_from)


def make_optimizer(cfg: FinetuneConfig, trainable: list):
    """AdamW as the authors (betas 0.9/0.999, weight decay 1e-2), or bitsandbytes' 8-bit AdamW on CUDA."""
    import torch

    kw = dict(lr=cfg.lr, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    if cfg.use_8bit_adam:  # checked by FinetuneConfig.check: CUDA and bitsandbytes are there
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(trainable, **kw)
    return torch.optim.AdamW(trainable, **kw)


def _state_copy(module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def tensors_digest(state: dict) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a state dict's tensors (file-format independent)."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _adapter_only_checkpoints(accelerator) -> None:
    """LoRA checkpoints hold the adapter (peft's state dict), not the whole UNet it sits on."""
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file, save_file

    def save_hook(models, weights, output_dir):
        for i, m in enumerate(models):
            state = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(accelerator.unwrap_model(m)).items()}
            save_file(state, str(Path(output_dir) / f"adapter_{i}.safetensors"))
        weights.clear()  # nothing else of the models is saved

    def load_hook(models, input_dir):
        for i, m in enumerate(list(models)):
            set_peft_model_state_dict(accelerator.unwrap_model(m), load_file(str(Path(input_dir) / f"adapter_{i}.safetensors")))
        models.clear()

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


def _tensorboard(cfg: FinetuneConfig, out: Path, accelerator):
    """accelerate's TensorBoard tracker writing to ``<out>/logs`` (None when off)."""
    if not cfg.tensorboard:
        return None
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ConfigError("--tensorboard needs the tensorboard package", "pip install tensorboard") from None
    accelerator.init_trackers("usbench-finetune", config={k: v for k, v in hyperparameters(cfg).items()})
    return accelerator


def _fp32(module):
    """The module in fp32 for saving (a no-op, and no diffusers warning, when it already is)."""
    import torch

    return module if next(module.parameters()).dtype == torch.float32 else module.to(torch.float32)


def _move(module, device, dtype) -> None:
    import torch

    module.to(device) if dtype == torch.float32 else module.to(device, dtype=dtype)


def save_checkpoint(accelerator, out: Path, step: int, losses: list[float], keep: int, hp: dict | None = None) -> Path:
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
        atomic_write_text(tmp / "train_state.json", json.dumps({"step": step, "losses": losses, "hyperparameters": hp}))
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
    for k in ("data", "base", "out", "init_from", "resume", "progress", "explicit", "override"):
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
        "out": str(Path(out).resolve()),
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
                 "train_counts": train_set.counts(), "train_ids": train_set.ids},
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
