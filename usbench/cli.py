"""The ``usbench`` command. It parses, calls and prints; the work lives in the library.

Every user error is a :class:`~usbench.errors.UsbenchError`: printed as one line on stderr,
exit code 2, no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from usbench.errors import UsbenchError

app = typer.Typer(
    name="usbench",
    help="Evaluate and benchmark generative models of breast ultrasound.\n\n"
    "Examples:\n\n"
    "  usbench run                                   # the built-in phantom benchmark\n\n"
    "  usbench run --generator sd-busi --reference Dataset_BUSI_with_GT\n\n"
    "  usbench evaluate --generated gen/ --reference Dataset_BUSI_with_GT\n\n"
    "  usbench study create --reference real/ --run results/runs/sd-busi-1a2b --readers alice,bob --out study/",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(help="Real datasets: inspect them, split them, make the phantom set.", no_args_is_help=True)
study_app = typer.Typer(help="The blinded reader study: create, serve, analyse.", no_args_is_help=True)
finetune_app = typer.Typer(help="The paper's fine-tuning recipes (Stable Diffusion, ControlNet).", no_args_is_help=True)
segmenter_app = typer.Typer(help="The lesion segmenter behind mask adherence.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(study_app, name="study")
app.add_typer(finetune_app, name="finetune")
app.add_typer(segmenter_app, name="segmenter")


def _print(text: str) -> None:
    typer.echo(text)


# ============================================================================================
# spine (issue 2): run, generate, evaluate, leaderboard, data inspect, doctor
# ============================================================================================


# ============================================================================================
# phantom (issue 3): data make-phantom
# ============================================================================================


# ============================================================================================
# metrics (issue 4)
# ============================================================================================


# ============================================================================================
# diffusion (issue 5): finetune sd-busi, finetune controlnet-busi
# ============================================================================================


def _finetune(kind: str, **flags) -> None:
    from usbench.recipes import finetune_controlnet, finetune_sd, recipe_config

    cfg = recipe_config(kind, **flags)
    result = (finetune_sd if kind == "sd-busi" else finetune_controlnet)(cfg)
    if result.losses:
        _print(f"{kind}: {result.steps} steps (resumed at {result.resumed_from}), final loss {result.losses[-1]:.4f}, "
               f"model in {result.out}")


_FT_DATA = typer.Option(..., "--data", help="Training data: a BUSI folder, BUS-BRA, UDIAT or an ImageSet.")
_FT_OUT = typer.Option(None, "--out", help="Output folder (default: where the generator looks, ~/.cache/usbench/models/<kind>).")
_FT_LORA = typer.Option(None, "--lora", help="Train a LoRA adapter of this rank instead of the whole UNet.")
_FT_STEPS = typer.Option(None, "--steps", help="Training steps (default: the authors': 20000 SD, 15000 ControlNet).")
_FT_LR = typer.Option(None, "--lr", help="Learning rate (default: 2e-6 SD, 1e-5 ControlNet, 1e-4 with --lora).")
_FT_BS = typer.Option(None, "--batch-size", help="Batch size per process (default: 2 SD, 4 ControlNet).")
_FT_RES = typer.Option(None, "--resolution", help="Training size in px (default: the base model's, 512 for SD 1.5).")
_FT_MP = typer.Option(None, "--mixed-precision", help="no, fp16 or bf16 (default: no).")
_FT_EMA = typer.Option(None, "--ema/--no-ema", help="Keep an exponential moving average of the weights and save it.")
_FT_RESUME = typer.Option(None, "--resume", help="Continue from the newest checkpoint in --out.")
_FT_CKPT = typer.Option(None, "--checkpoint-every", help="Save a resumable checkpoint every N steps (default: 500).")
_FT_SEED = typer.Option(None, "--seed", help="Seed of data order, augmentation and noise (default: 0).")
_FT_SPLIT = typer.Option(None, "--split", help="auto (paper split for BUSI, else seeded), paper, seeded or none.")
_FT_GC = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing",
                      help="Recompute activations to save memory (default: on, as the authors; off is faster).")


@finetune_app.command("sd-busi")
def finetune_sd_cmd(
    data: str = _FT_DATA,
    base: str = typer.Option(..., "--base", help="Stable Diffusion 1.5: a diffusers folder or a hub id in the HF cache."),
    out: Optional[str] = _FT_OUT,
    init_from: Optional[str] = typer.Option(None, "--init-from", help="Successive fine-tuning: start from this fine-tuned SD."),
    lora: Optional[int] = _FT_LORA, steps: Optional[int] = _FT_STEPS, lr: Optional[float] = _FT_LR,
    batch_size: Optional[int] = _FT_BS, resolution: Optional[int] = _FT_RES, mixed_precision: Optional[str] = _FT_MP,
    ema: Optional[bool] = _FT_EMA, resume: Optional[bool] = _FT_RESUME, checkpoint_every: Optional[int] = _FT_CKPT,
    seed: Optional[int] = _FT_SEED, split: Optional[str] = _FT_SPLIT, gradient_checkpointing: Optional[bool] = _FT_GC,
) -> None:
    """Fine-tune Stable Diffusion on ultrasound images with the paper's recipe (whole UNet, or --lora).

    Examples:

      usbench finetune sd-busi --data Dataset_BUSI_with_GT --base runwayml/stable-diffusion-v1-5

      usbench finetune sd-busi --data BUSBRA --base sd15/ --init-from ~/.cache/usbench/models/sd-busi --out sd-busi-busbra

      usbench finetune sd-busi --data Dataset_BUSI_with_GT --base sd15/ --lora 8 --mixed-precision fp16 --out sd-busi-lora

      accelerate launch --multi_gpu --num_processes 4 -m usbench finetune sd-busi --data Dataset_BUSI_with_GT --base sd15/
    """
    _finetune("sd-busi", data=data, base=base, out=out, init_from=init_from, lora=lora, steps=steps, lr=lr,
              batch_size=batch_size, resolution=resolution, mixed_precision=mixed_precision, ema=ema, resume=resume,
              checkpoint_every=checkpoint_every, seed=seed, split=split, gradient_checkpointing=gradient_checkpointing)


@finetune_app.command("controlnet-busi")
def finetune_controlnet_cmd(
    data: str = _FT_DATA,
    base: str = typer.Option(..., "--base", help="The fine-tuned SD (output of `usbench finetune sd-busi`)."),
    out: Optional[str] = _FT_OUT,
    init_from: Optional[str] = typer.Option(None, "--init-from", help="Successive fine-tuning: start from this ControlNet checkpoint."),
    steps: Optional[int] = _FT_STEPS, lr: Optional[float] = _FT_LR,
    batch_size: Optional[int] = _FT_BS, resolution: Optional[int] = _FT_RES, mixed_precision: Optional[str] = _FT_MP,
    ema: Optional[bool] = _FT_EMA, resume: Optional[bool] = _FT_RESUME, checkpoint_every: Optional[int] = _FT_CKPT,
    seed: Optional[int] = _FT_SEED, split: Optional[str] = _FT_SPLIT, gradient_checkpointing: Optional[bool] = _FT_GC,
) -> None:
    """Train the paper's mask-conditioned ControlNet on top of a fine-tuned SD (base locked).

    Examples:

      usbench finetune controlnet-busi --data Dataset_BUSI_with_GT --base ~/.cache/usbench/models/sd-busi

      usbench finetune controlnet-busi --data Dataset_BUSI_with_GT --base sd-busi/ --out cn/ --resume
    """
    _finetune("controlnet-busi", data=data, base=base, out=out, init_from=init_from, steps=steps, lr=lr,
              batch_size=batch_size, resolution=resolution, mixed_precision=mixed_precision, ema=ema, resume=resume,
              checkpoint_every=checkpoint_every, seed=seed, split=split, gradient_checkpointing=gradient_checkpointing)


# ============================================================================================
# task metrics (issue 6): segmenter train, utility
# ============================================================================================


# ============================================================================================
# reader study (issue 7): study create, serve, analyze, mrmc, export
# ============================================================================================


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the console script: user errors become one line and exit code 2."""
    try:
        app(args=argv, standalone_mode=False)
    except UsbenchError as err:
        typer.echo(f"error: {err}", err=True)
        return err.exit_code
    except typer.Exit as exc:  # raised by commands that end early on purpose
        return exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except Exception as exc:  # click usage errors arrive here in standalone_mode=False
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
