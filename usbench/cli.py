"""The ``usbench`` command. It parses, calls and prints; the work lives in the library.

Every user error is a :class:`~usbench.errors.UsbenchError`: printed as one line on stderr,
exit code 2, no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from usbench.common import SEED_STRIDE
from usbench.config import DEFAULTS
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
    rich_markup_mode=None,  # plain help: Rich markup would swallow "[generator.NAME]" and "[default: ...]"
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(help="Real datasets: inspect them (duplicates, split leaks); make the phantom set.", no_args_is_help=True)
study_app = typer.Typer(help="The blinded reader study: create, serve, analyse.", no_args_is_help=True)
finetune_app = typer.Typer(help="The paper's fine-tuning recipes (Stable Diffusion, ControlNet).", no_args_is_help=True)
segmenter_app = typer.Typer(help="The lesion segmenter behind mask adherence.", no_args_is_help=True)
model_app = typer.Typer(help="Diffusion models for trying the recipes: a tiny Stable Diffusion built in code.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(study_app, name="study")
app.add_typer(finetune_app, name="finetune")
app.add_typer(segmenter_app, name="segmenter")
app.add_typer(model_app, name="model")


def _print(text: str) -> None:
    typer.echo(text)


# ============================================================================================
# spine (issue 2): run, generate, evaluate, leaderboard, data inspect, doctor
# ============================================================================================


def _log(msg: str) -> None:
    typer.echo(msg, err=True)


def _print_table(rows: list, all_subsets: bool) -> None:
    """The leaderboard on stdout: a compact table of the `all` rows and the lines that explain it."""
    import shutil

    from usbench import leaderboard

    width = shutil.get_terminal_size((10_000, 24)).columns if sys.stdout.isatty() else None
    typer.echo(leaderboard.to_rich(rows, all_subsets=all_subsets, width=width), nl=False)
    typer.echo(leaderboard.footer(rows, all_subsets=all_subsets), nl=False)


@app.command()
def run(
    generator: List[str] = typer.Option([], "--generator", "-g", help="Generator to run (repeatable). Default: every built-in generator that needs no downloaded weights."),
    reference: Optional[str] = typer.Option(None, "--reference", "-r", help="Real reference set: a dataset folder (BUSI, BUS-BRA, UDIAT, ImageSet, folder) or 'phantom-busi' (built in, the default)."),
    metrics: List[str] = typer.Option([], "--metrics", "-m", help="Metric to compute (repeatable; 'kid@radiomics' picks the extractor). Default: all that can run."),
    n: Optional[int] = typer.Option(None, "--n", help=f"Images per generator (default {DEFAULTS['n']})."),
    seed: Optional[int] = typer.Option(None, "--seed", help=f"Seed of requests, splits and bootstrap (default {DEFAULTS['seed']})."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help=f"Output folder (default ./{DEFAULTS['out']})."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML run configuration (flags override it; default: none, the built-in defaults)."),
    image_size: Optional[int] = typer.Option(None, "--image-size", help=f"Side of the square images generated and compared; a reference of another size is resized to it, PIL bicubic (default {DEFAULTS['generation_size']})."),
    n_bootstrap: Optional[int] = typer.Option(None, "--bootstrap", help=f"Bootstrap resamples for intervals (default {DEFAULTS['n_bootstrap']}; 0 = none)."),
    split: Optional[str] = typer.Option(None, "--split", help=f"Reference split: 'seeded' (leak-free: duplicates and patients on one side), 'paper' (BUSI's published hold-out, leaks reported) or 'paper-dedup' (default {DEFAULTS['split']})."),
    inception_weights: Optional[Path] = typer.Option(None, "--inception-weights", help="Path of weights-inception-2015-12-05-6726825d.pth (default: looked up in the caches, see usbench doctor)."),
    segmenter: Optional[Path] = typer.Option(None, "--segmenter", help="Segmenter folder (usbench segmenter train) for mask adherence (default: ~/.cache/usbench/models/segmenter)."),
    alexnet_weights: Optional[Path] = typer.Option(None, "--alexnet-weights", help="torchvision's alexnet-owt-7be5be79.pth, for lpips-diversity (default: looked up in the caches)."),
    study: List[Path] = typer.Option([], "--study", help="Reader-study folder whose results join the leaderboard (repeatable; default: none)."),
    utility: bool = typer.Option(False, "--utility", help="Also run the downstream classification experiment per generator."),
    per_mask: Optional[int] = typer.Option(None, "--per-mask", help="Mask-conditioned generators: exactly K images per held-out mask (the paper: 8); replaces --n for them (default: off)."),
    allow_training_masks: bool = typer.Option(False, "--allow-training-masks", help="Let a ControlNet be conditioned on masks it was trained on (its model card's split)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    force: bool = typer.Option(False, "--force", help="Overwrite files in --out that usbench did not write (a report.html of yours, ...)."),
    all_subsets: bool = typer.Option(False, "--all-subsets", help="Print the per-label rows too (the files always hold them)."),
) -> None:
    """Run a benchmark: generate → features → metrics → leaderboard.csv and report.html.

    With no arguments, runs the built-in benchmark: the phantom reference set and every built-in
    generator and metric that needs no downloaded weights.

    Examples:

      usbench run

      usbench run --generator sd-busi --reference path/to/Dataset_BUSI_with_GT

      usbench run -g phantom -g sd-busi --metrics fid --metrics kid --n 500 --inception-weights w.pth

      usbench run --config benchmark.toml --out results/

      usbench run -g controlnet-busi --reference Dataset_BUSI_with_GT --per-mask 8   # the paper's protocol
    """
    import usbench
    from usbench import validate

    validate.check_run_numbers(n=n, seed=seed, image_size=image_size, n_bootstrap=n_bootstrap, split=split)
    result = usbench.run(config, generators=generator, reference=reference, metrics=metrics, n=n, seed=seed, out=out,
                         image_size=image_size, n_bootstrap=n_bootstrap, split=split, inception_weights=inception_weights,
                         segmenter=segmenter, alexnet_weights=alexnet_weights, utility=True if utility else None,
                         per_mask=per_mask, allow_training_masks=True if allow_training_masks else None,
                         studies=study, force=force, progress=not quiet, log=_log)
    if result.main_process:
        _print_table(result.rows, all_subsets)
        _log(f"wrote {result.leaderboard_csv} and {result.report_html}")


@app.command()
def generate(
    generator: str = typer.Option(..., "--generator", "-g", help="Generator name (see usbench doctor)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output ImageSet folder (created; must not hold another set)."),
    n: Optional[int] = typer.Option(None, "--n", help=f"Number of images (default {DEFAULTS['n_generate']})."),
    seed: Optional[int] = typer.Option(None, "--seed", help=f"Seed (default {DEFAULTS['seed']}); image i uses seed*{SEED_STRIDE}+i."),
    labels_from: Optional[str] = typer.Option(None, "--labels-from", help=f"Dataset whose label proportions (and, for mask-conditioned generators, test-split masks) the requests follow (default {DEFAULTS['labels_from']})."),
    split: Optional[str] = typer.Option(None, "--split", help="Split whose test part gives the conditioning masks: 'seeded' (default) or 'paper'."),
    image_size: Optional[int] = typer.Option(None, "--image-size", help=f"Side of the square output images (default {DEFAULTS['generation_size']})."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML file whose [generator.NAME] table configures the generator (default: none, its defaults)."),
    per_mask: Optional[int] = typer.Option(None, "--per-mask", help="Mask-conditioned generators: exactly K images per held-out mask (the paper: 8); replaces --n for them (default: off)."),
    allow_training_masks: bool = typer.Option(False, "--allow-training-masks", help="Let a ControlNet be conditioned on masks it was trained on (its model card's split) (default: refused)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Generate images with one generator into an ImageSet folder (resumable).

    A ControlNet trained by usbench is conditioned only on masks it was not trained on (the
    held-out split its model card records); conditioning.json beside the images says which.

    Under `accelerate launch` the requests are sharded across processes and merged.

    Examples:

      usbench generate -g phantom --n 50 --out phantom50/

      usbench generate -g controlnet-busi --labels-from Dataset_BUSI_with_GT --per-mask 8 --out cn/

      accelerate launch -m usbench generate -g sd-busi --n 1000 --out sd1000/
    """
    import usbench
    from usbench import validate

    validate.check_run_numbers(n=n, seed=seed, image_size=image_size, split=split)
    images = usbench.generate(generator, n, out, config=config, seed=seed, masks_from=labels_from, split=split,
                              image_size=image_size, per_mask=per_mask,
                              allow_training_masks=True if allow_training_masks else None, progress=not quiet, log=_log)
    if images is not None:
        _print(f"wrote {len(images)} images to {out}")


@app.command()
def evaluate(
    generated: Path = typer.Option(..., "--generated", help="Generated images: an ImageSet folder or a folder of images."),
    reference: str = typer.Option(..., "--reference", help=f"Real images: a dataset folder or 'phantom-busi' (built in, at --image-size, default {DEFAULTS['generation_size']})."),
    train: Optional[Path] = typer.Option(None, "--train", help="The generator's training set, for memorization (default: none, memorization is skipped)."),
    metrics: List[str] = typer.Option([], "--metrics", "-m", help="Metric (repeatable). Default: all that can run."),
    seed: Optional[int] = typer.Option(None, "--seed", help=f"Seed of the bootstrap and of KID's subsets (default {DEFAULTS['seed']})."),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="Resize every image to N x N (PIL bicubic) before the extractors. Default: none, the images' own size when all of them share one; sets of mixed sizes need it."),
    n_bootstrap: Optional[int] = typer.Option(None, "--bootstrap", help=f"Bootstrap resamples for intervals (default {DEFAULTS['n_bootstrap']}; 0 = none)."),
    inception_weights: Optional[Path] = typer.Option(None, "--inception-weights", help="Path of weights-inception-2015-12-05-6726825d.pth (default: looked up in the caches, see usbench doctor)."),
    segmenter: Optional[Path] = typer.Option(None, "--segmenter", help="Segmenter folder (usbench segmenter train) for mask adherence (default: ~/.cache/usbench/models/segmenter)."),
    alexnet_weights: Optional[Path] = typer.Option(None, "--alexnet-weights", help="torchvision's alexnet-owt-7be5be79.pth, for lpips-diversity (default: looked up in the caches)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML run configuration ([metric.*], [extractor.*]; flags override it; default: none)."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Feature cache folder (default: ~/.cache/usbench/features)."),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
    allow_training_masks: bool = typer.Option(False, "--allow-training-masks", help="Score a set conditioned on its generator's training masks anyway (default: refused)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Score a folder of generated images against real ones (no generation).

    Examples:

      usbench evaluate --generated samples/ --reference real/

      usbench evaluate --generated samples/ --reference Dataset_BUSI_with_GT --image-size 256   # BUSI's sizes vary

      usbench evaluate --generated samples/ --reference real/ --train train/ --metrics memorization --json
    """
    import usbench

    from usbench import validate

    validate.check_run_numbers(seed=seed, image_size=image_size, n_bootstrap=n_bootstrap)
    result = usbench.evaluate(generated, reference, metrics=metrics, train=train, inception_weights=inception_weights,
                              image_size=image_size, n_bootstrap=n_bootstrap, seed=seed, cache=cache, segmenter=segmenter,
                              alexnet_weights=alexnet_weights, config=config, allow_training_masks=allow_training_masks,
                              progress=not quiet, log=_log)
    _print(result.to_json() if as_json else result.summary())


@app.command("leaderboard")
def leaderboard_cmd(
    dirs: List[Path] = typer.Argument(..., help="Benchmark output folders or run folders."),
    out: Path = typer.Option(..., "--out", "-o", help="CSV file to write (.md and .html beside it)."),
    study: List[Path] = typer.Option([], "--study", help="Reader-study folder to join (repeatable; default: none)."),
    force: bool = typer.Option(False, "--force", help="Overwrite FILE.csv/.md/.html even if usbench did not write them."),
    all_subsets: bool = typer.Option(False, "--all-subsets", help="Print the per-label rows too (the files always hold them)."),
) -> None:
    """Aggregate runs into leaderboard.csv (+ .md, .html).

    Examples:

      usbench leaderboard usbench-results/ --out leaderboard.csv

      usbench leaderboard results-a/ results-b/runs/sd-busi-1a2b3c4d5e --study study/ --out all.csv
    """
    import usbench
    from usbench import leaderboard

    rows = usbench.write_leaderboard(dirs, out, studies=study, force=force)
    _print_table(rows, all_subsets)
    _log(f"wrote {out} ({len(rows)} rows) and its .md and .html")


@data_app.command("inspect")
def data_inspect(
    path: Path = typer.Argument(..., help="Dataset folder (BUSI, BUS-BRA, UDIAT, ImageSet or a folder of images)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    seed: Optional[int] = typer.Option(None, "--seed", help=f"Seed of the split whose leaks are checked (default {DEFAULTS['seed']})."),
) -> None:
    """Counts per label, masks per image, sizes, exact and near duplicates, and split leaks.

    Examples:

      usbench data inspect Dataset_BUSI_with_GT

      usbench data inspect BUSBRA/ --json > busbra.json
    """
    import json as _json

    from usbench.datasets import load
    from usbench.datasets.inspect import format_report, inspect

    report = inspect(load(path), seed=DEFAULTS["seed"] if seed is None else seed)
    _print(_json.dumps(report, indent=2) if as_json else format_report(report))


@app.command()
def doctor(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Versions, device, registered generators and metrics, and which weights are found where.

    Example:

      usbench doctor
    """
    import json as _json

    from usbench.doctor import doctor_report, format_doctor

    report = doctor_report()
    _print(_json.dumps(report, indent=2) if as_json else format_doctor(report))


# ============================================================================================
# phantom (issue 3): data make-phantom
# ============================================================================================


@data_app.command("make-phantom")
def data_make_phantom(
    out: Path = typer.Option(..., "--out", help="New (or empty) folder to write the BUSI-layout set into."),
    n: int = typer.Option(780, "--n", help="Number of images, split like BUSI (133:437:210 normal:benign:malignant)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the set; same seed, same images."),
    size: int = typer.Option(256, "--size", help="Image side in pixels (32-1024)."),
) -> None:
    """Write simulated breast ultrasound images (the built-in phantom) as a BUSI-layout folder.

    Files: <class>/<class> (i).png with <class>/<class> (i)_mask.png (all-zero masks for normal), readable by the BUSI reader. With --n 780 and the same seed and size these are the images of the built-in phantom-busi reference set. A non-empty --out is refused.

    Examples:

      usbench data make-phantom --out phantom_busi --n 780 --seed 0

      usbench data make-phantom --out small --n 30 --seed 1 --size 128
    """
    from usbench import validate
    from usbench.datasets.phantom import make_phantom_dataset

    validate.check_n(n)
    validate.check_seed(seed)
    validate.check_image_size(size, "--size")
    counts = make_phantom_dataset(out, n=n, seed=seed, size=size, progress=True)
    summary = ", ".join(f"{c} {label}" for label, c in counts.items())
    _print(f"wrote {sum(counts.values())} phantom images ({summary}) at {size}x{size} to {out}")


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
        _print(f"{kind}: {result.steps} steps (resumed at {result.resumed_from}), final loss {result.final_loss:.4f} "
               f"(mean of the last {min(len(result.losses), 50)} steps, as the model card), model in {result.out}")


_FT_DATA = typer.Option(..., "--data", help="Training data: a BUSI folder, BUS-BRA, UDIAT or an ImageSet.")
_FT_OUT = typer.Option(None, "--out", help="Output folder (default: where the generator looks, ~/.cache/usbench/models/<kind>).")
_FT_LORA = typer.Option(None, "--lora", help="Train a LoRA adapter of this rank instead of the whole UNet (default: none, the whole UNet).")
_FT_STEPS = typer.Option(None, "--steps", help="Optimiser steps (default: the authors': 20000 SD, 15000 ControlNet).")
_FT_LR = typer.Option(None, "--lr", help="Learning rate (default: 2e-6, the authors'; 1e-4 with --lora).")
_FT_LR_CN = typer.Option(None, "--lr", help="Learning rate (default: 1e-5, the authors').")
_FT_BS = typer.Option(None, "--batch-size", help="Batch size per process (default: 2 SD, 4 ControlNet).")
_FT_RES = typer.Option(None, "--resolution", help="Training size in px (default: the base model's, 512 for SD 1.5).")
_FT_MP = typer.Option(None, "--mixed-precision", help="no, fp16 or bf16; frozen parts are saved unchanged (default: no).")
_FT_EMA = typer.Option(None, "--ema/--no-ema", help="Keep an exponential moving average of the weights and save it (default: off).")
_FT_RESUME = typer.Option(None, "--resume", help="Continue from the newest checkpoint in --out, with its settings (default: off).")
_FT_OVERRIDE = typer.Option(None, "--override", help="With --resume: use the flags that differ from the checkpoint's, recorded in the card (default: refused).")
_FT_CKPT = typer.Option(None, "--checkpoint-every", help="Save a resumable checkpoint every N steps (default: 500).")
_FT_KEEP = typer.Option(None, "--keep-checkpoints", help="Resumable checkpoints kept (default: 2, the newest).")
_FT_SEED = typer.Option(None, "--seed", help="Seed of data order, augmentation and noise (default: 0).")
_FT_SPLIT = typer.Option(None, "--split", help="auto (paper split for BUSI ids, else seeded with a notice), paper, seeded or none (default: auto).")
_FT_GC = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing",
                      help="Recompute activations to save memory (default: on, as the authors; off is faster).")
_FT_ACC = typer.Option(None, "--gradient-accumulation", help="Micro-batches per step: batch B × K acts as one batch of B·K (default 1).")
_FT_SCHED = typer.Option(None, "--lr-scheduler", help="constant (the authors'), constant_with_warmup, linear, cosine, ... (diffusers.optimization) (default: constant).")
_FT_WARM = typer.Option(None, "--lr-warmup-steps", help="Warm-up steps of the lr schedule (default 0).")
_FT_SNR = typer.Option(None, "--snr-gamma", help="Min-SNR-γ loss weighting (5 is usual; default off).")
_FT_NOFF = typer.Option(None, "--noise-offset", help="Offset noise, e.g. 0.05 (default off).")
_FT_EMPTY = typer.Option(None, "--empty-prompt-rate", help="Share of samples trained with the empty prompt, e.g. 0.1 (default 0).")
_FT_VAL = typer.Option(None, "--validation-every", help="Write one image per label to OUT/validation/step-N every N steps (default off).")
_FT_TB = typer.Option(None, "--tensorboard", help="Log loss and lr to OUT/logs for TensorBoard (needs the tensorboard package) (default: off).")
_FT_8BIT = typer.Option(None, "--use-8bit-adam", help="bitsandbytes' 8-bit AdamW (CUDA only; less optimiser memory) (default: off).")


@finetune_app.command("sd-busi")
def finetune_sd_cmd(
    data: str = _FT_DATA,
    base: str = typer.Option(..., "--base", help="Stable Diffusion 1.5: a diffusers folder, a hub id in the HF cache, or one .ckpt/.safetensors file (the authors' v1-5-pruned)."),
    base_config: Optional[str] = typer.Option(None, "--base-config", help="For a single-file --base: a folder or hub id with its diffusers configs (default: SD 1.5's, from the HF cache)."),
    out: Optional[str] = _FT_OUT,
    init_from: Optional[str] = typer.Option(None, "--init-from", help="Successive fine-tuning: start from this fine-tuned SD (default: none, start from --base)."),
    lora: Optional[int] = _FT_LORA, steps: Optional[int] = _FT_STEPS, lr: Optional[float] = _FT_LR,
    batch_size: Optional[int] = _FT_BS, resolution: Optional[int] = _FT_RES, mixed_precision: Optional[str] = _FT_MP,
    ema: Optional[bool] = _FT_EMA, resume: Optional[bool] = _FT_RESUME, checkpoint_every: Optional[int] = _FT_CKPT,
    seed: Optional[int] = _FT_SEED, split: Optional[str] = _FT_SPLIT, gradient_checkpointing: Optional[bool] = _FT_GC,
    override: Optional[bool] = _FT_OVERRIDE, keep_checkpoints: Optional[int] = _FT_KEEP,
    gradient_accumulation: Optional[int] = _FT_ACC, lr_scheduler: Optional[str] = _FT_SCHED,
    lr_warmup_steps: Optional[int] = _FT_WARM, snr_gamma: Optional[float] = _FT_SNR, noise_offset: Optional[float] = _FT_NOFF,
    empty_prompt_rate: Optional[float] = _FT_EMPTY, validation_every: Optional[int] = _FT_VAL,
    tensorboard: Optional[bool] = _FT_TB, use_8bit_adam: Optional[bool] = _FT_8BIT,
) -> None:
    """Fine-tune Stable Diffusion on ultrasound images with the paper's recipe (whole UNet, or --lora).

    Examples:

      usbench model tiny --out tiny-sd --size 64   # then, on any CPU in minutes:

      usbench finetune sd-busi --data phantom_busi --base tiny-sd --steps 200 --lr 1e-4 --out sd-tiny

      usbench finetune sd-busi --data Dataset_BUSI_with_GT --base runwayml/stable-diffusion-v1-5

      usbench finetune sd-busi --data Dataset_BUSI_with_GT --base v1-5-pruned.safetensors --base-config sd15-configs/

      usbench finetune sd-busi --data BUSBRA --base sd15/ --init-from ~/.cache/usbench/models/sd-busi --out sd-busi-busbra

      usbench finetune sd-busi --data Dataset_BUSI_with_GT --base sd15/ --lora 8 --mixed-precision fp16 --out sd-busi-lora

      accelerate launch --multi_gpu --num_processes 4 -m usbench finetune sd-busi --data Dataset_BUSI_with_GT --base sd15/
    """
    _finetune("sd-busi", data=data, base=base, base_config=base_config, out=out, init_from=init_from, lora=lora, steps=steps, lr=lr,
              batch_size=batch_size, resolution=resolution, mixed_precision=mixed_precision, ema=ema, resume=resume,
              checkpoint_every=checkpoint_every, seed=seed, split=split, gradient_checkpointing=gradient_checkpointing,
              override=override, keep_checkpoints=keep_checkpoints, gradient_accumulation=gradient_accumulation,
              lr_scheduler=lr_scheduler, lr_warmup_steps=lr_warmup_steps, snr_gamma=snr_gamma, noise_offset=noise_offset,
              empty_prompt_rate=empty_prompt_rate, validation_every=validation_every, tensorboard=tensorboard,
              use_8bit_adam=use_8bit_adam)


@finetune_app.command("controlnet-busi")
def finetune_controlnet_cmd(
    data: str = _FT_DATA,
    base: str = typer.Option(..., "--base", help="The fine-tuned SD (output of `usbench finetune sd-busi`)."),
    out: Optional[str] = _FT_OUT,
    init_from: Optional[str] = typer.Option(None, "--init-from", help="Successive fine-tuning: start from this ControlNet checkpoint (default: none, a new ControlNet)."),
    steps: Optional[int] = _FT_STEPS, lr: Optional[float] = _FT_LR_CN,
    batch_size: Optional[int] = _FT_BS, resolution: Optional[int] = _FT_RES, mixed_precision: Optional[str] = _FT_MP,
    ema: Optional[bool] = _FT_EMA, resume: Optional[bool] = _FT_RESUME, checkpoint_every: Optional[int] = _FT_CKPT,
    seed: Optional[int] = _FT_SEED, split: Optional[str] = _FT_SPLIT, gradient_checkpointing: Optional[bool] = _FT_GC,
    override: Optional[bool] = _FT_OVERRIDE, keep_checkpoints: Optional[int] = _FT_KEEP,
    gradient_accumulation: Optional[int] = _FT_ACC, lr_scheduler: Optional[str] = _FT_SCHED,
    lr_warmup_steps: Optional[int] = _FT_WARM, snr_gamma: Optional[float] = _FT_SNR, noise_offset: Optional[float] = _FT_NOFF,
    empty_prompt_rate: Optional[float] = _FT_EMPTY, validation_every: Optional[int] = _FT_VAL,
    tensorboard: Optional[bool] = _FT_TB, use_8bit_adam: Optional[bool] = _FT_8BIT,
) -> None:
    """Train the paper's mask-conditioned ControlNet on top of a fine-tuned SD (base locked).

    Examples:

      usbench finetune controlnet-busi --data Dataset_BUSI_with_GT --base ~/.cache/usbench/models/sd-busi

      usbench finetune controlnet-busi --data Dataset_BUSI_with_GT --base sd-busi/ --out cn/ --resume
    """
    _finetune("controlnet-busi", data=data, base=base, out=out, init_from=init_from, steps=steps, lr=lr,
              batch_size=batch_size, resolution=resolution, mixed_precision=mixed_precision, ema=ema, resume=resume,
              checkpoint_every=checkpoint_every, seed=seed, split=split, gradient_checkpointing=gradient_checkpointing,
              override=override, keep_checkpoints=keep_checkpoints, gradient_accumulation=gradient_accumulation,
              lr_scheduler=lr_scheduler, lr_warmup_steps=lr_warmup_steps, snr_gamma=snr_gamma, noise_offset=noise_offset,
              empty_prompt_rate=empty_prompt_rate, validation_every=validation_every, tensorboard=tensorboard,
              use_8bit_adam=use_8bit_adam)


@model_app.command("tiny")
def model_tiny(
    out: Path = typer.Option(..., "--out", help="New (or empty) folder for the model (diffusers save_pretrained layout)."),
    size: int = typer.Option(64, "--size", help="Image size it makes and trains at (a multiple of 8)."),
    seed: int = typer.Option(0, "--seed", help="Seed of its random weights."),
) -> None:
    """Write a tiny Stable Diffusion (SD 1.5's architecture at toy size, random weights, ~6 MB) to
    run the fine-tuning recipes and the generators end to end on a CPU in minutes.

    Examples:

      usbench model tiny --out tiny-sd --size 64

      usbench finetune sd-busi --data phantom_busi --base tiny-sd --steps 200 --lr 1e-4 --out sd-tiny
    """
    from usbench.generators.tiny import save_tiny_sd

    save_tiny_sd(out, seed=seed, size=size)
    _print(f"wrote a tiny Stable Diffusion ({size} px) to {out}")


# ============================================================================================
# task metrics (issue 6): segmenter train, utility
# ============================================================================================


def _split_line(sp: dict) -> str:
    """One line on the split a task used: leak-free, or how many duplicate groups cross it."""
    removed = f", {len(sp['removed'])} leaking training image(s) removed" if sp.get("removed") else ""
    state = "leak-free" if sp.get("leak_free") else f"{len(sp.get('leaks', []))} duplicate group(s) cross train/test (a leak)"
    return f"split {sp['scheme']} (seed {sp['seed']}): {sp['n_train']} train / {sp['n_test']} test, {state}{removed}"


@segmenter_app.command("train")
def segmenter_train(
    data: str = typer.Option(..., "--data", help="Reference set with lesion masks: a dataset folder, an ImageSet, or phantom-busi."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for segmenter.pt and card.json [default: ~/.cache/usbench/models/segmenter]."),
    split: str = typer.Option("seeded", "--split", help="Train/test split: seeded (stratified; duplicate and patient groups kept on one side), paper (BUSI's hold-out as published) or paper-dedup (its leaking training images removed)."),
    epochs: int = typer.Option(40, "--epochs", help="Training epochs (the best validation epoch is kept)."),
    size: int = typer.Option(256, "--size", help="Image size the U-Net trains and segments at."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the validation hold-out and training."),
    batch_size: int = typer.Option(16, "--batch-size", help="Images per training step."),
    width: int = typer.Option(16, "--width", help="Channels of the U-Net's first level (then x2, x4, x8); 8 is enough for the phantom on CPU."),
) -> None:
    """Train the lesion segmenter behind mask adherence, and measure its ceiling on the test split.

    Examples:

      usbench segmenter train --data Dataset_BUSI_with_GT --split paper --out models/seg-busi

      usbench segmenter train --data phantom-busi --size 256 --width 8 --epochs 20   # CPU, minutes
    """
    from rich.progress import Progress

    from usbench.datasets import load
    from usbench.tasks.segmenter import SegmenterConfig, train_segmenter

    if width < 2:
        from usbench.errors import ConfigError

        raise ConfigError(f"--width must be at least 2, got {width}", "e.g. --width 8 or 16")
    config = SegmenterConfig(image_size=size, epochs=epochs, split=split, seed=seed, batch_size=batch_size,
                             channels=(width, 2 * width, 4 * width, 8 * width))
    imageset = load(data)
    with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("training segmenter", total=epochs)

        def tick(epoch: int, total: int, val_dice: float) -> None:
            bar.update(task, completed=epoch, description=f"training segmenter (val Dice {val_dice:.3f})")

        seg = train_segmenter(imageset, out, config, progress=tick)
    c = seg.card["ceiling"]
    _print(f"segmenter saved to {seg.folder}")
    _print(_split_line(seg.card["split"]))
    _print(f"validation Dice {seg.card['validation_dice']:.3f} (epoch {seg.card['best_epoch']}/{epochs}); "
           f"ceiling on the test split ({c['n']} images): Dice {c['dice']:.3f}, HD95 {c['hd95']:.1f} px")
    for label, v in c["per_label"].items():
        _print(f"  {label:<10} n={v['n']:<4} Dice {v['dice']:.3f}  HD95 {v['hd95']:.1f} px  "
               f"presence {c['presence']['per_label'][label]:.3f}")


@segmenter_app.command("show")
def segmenter_show(
    folder: Optional[Path] = typer.Argument(None, help="Segmenter folder [default: ~/.cache/usbench/models/segmenter]."),
) -> None:
    """Print a trained segmenter's card: data, split, size, labels, validation Dice, ceiling.

    Examples:

      usbench segmenter show models/seg-busi
    """
    from usbench.tasks.segmenter import Segmenter

    card = Segmenter.load(folder).card
    c = card["ceiling"]
    _print(f"{card['kind']} at {card['image_size']} px, labels {', '.join(card['labels'])}")
    _print(f"data {card['data']['name']} (content sha256 {card['data']['content_hash'][:16]}…), split {card['split']['scheme']} "
           f"seed {card['split']['seed']}: {card['split']['n_train']} train / {card['split']['n_val']} validation / {card['split']['n_test']} test")
    _print(f"epochs {card['epochs']} (best {card['best_epoch']}), validation Dice {card['validation_dice']:.3f}")
    _print(f"ceiling: Dice {c['dice']:.3f}, HD95 {c['hd95']:.1f} px, presence {c['presence']['rate']:.3f}")


@app.command("utility")
def utility(
    real: str = typer.Option(..., "--real", help="Real labelled set (benign/malignant): dataset folder, ImageSet, or phantom-busi."),
    synthetic: str = typer.Option(..., "--synthetic", help="Generated images: an ImageSet folder or a run directory holding one."),
    n_synthetic: int = typer.Option(0, "--n-synthetic", help="Synthetic images added to training (0: all benign/malignant ones)."),
    seeds: int = typer.Option(3, "--seeds", help="Training seeds per arm."),
    model: str = typer.Option("small-cnn", "--model", help="small-cnn (CPU, phantom) or resnet18 (real data)."),
    resnet_weights: Optional[Path] = typer.Option(None, "--resnet-weights", help="torchvision resnet18-f37072fd.pth (ImageNet) (default: none, random init)."),
    size: int = typer.Option(0, "--size", help="Image size (0: 64 for small-cnn, 224 for resnet18)."),
    epochs: int = typer.Option(30, "--epochs", help="Passes over the real training split (every arm gets that many steps)."),
    split: str = typer.Option("seeded", "--split", help="seeded (leak-free), paper (as published, leaks reported) or paper-dedup (default: seeded)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for utility.json (default: none, printed only)."),
    as_json: bool = typer.Option(False, "--json", help="Print the leaderboard columns as JSON."),
) -> None:
    """Downstream utility: does adding generated images help a benign-vs-malignant classifier?

    Trains on real, real + synthetic, and synthetic only (TSTR); tests on the real test split;
    ROC AUC with DeLong intervals and DeLong's test for the difference, over several seeds.

    Examples:

      usbench utility --real phantom-busi --synthetic results/runs/phantom-1a2b --seeds 3

      usbench utility --real Dataset_BUSI_with_GT --split paper --synthetic gen/ --model resnet18 --resnet-weights resnet18-f37072fd.pth --out util/
    """
    import json as _json

    from rich.progress import Progress

    from usbench.datasets import load
    from usbench.tasks.utility import UtilityConfig, leaderboard_columns, resolve_synthetic, run_utility, write_result

    config = UtilityConfig(n_synthetic=n_synthetic, seeds=seeds, model=model, image_size=size, epochs=epochs, split=split,
                           resnet_weights=str(resnet_weights or ""))
    if out is not None:
        from usbench.imageset import ensure_writable_dir

        ensure_writable_dir(out)  # fail before training, not after
    real_set, synth_set = load(real), resolve_synthetic(synthetic)
    with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("utility", total=seeds * 3)
        result = run_utility(real_set, synth_set, config, progress=lambda msg: bar.update(task, advance=1, description=msg))
    path = write_result(result, out) if out is not None else None
    cols = leaderboard_columns(result)
    if as_json:
        _print(_json.dumps(cols | {"result_file": str(path) if path else None}))
        return
    s = result["summary"]
    _print(_split_line(result["split"]))
    _print(f"classifier: {result['model']['description']}; {len(result['seeds'])} seeds; "
           f"test split {result['n_test']} images ({result['n_test_malignant']} malignant)")
    for key, name in (("auc_real", "real"), ("auc_real_synth", "real + synthetic"), ("auc_synth", "synthetic only (TSTR)")):
        if key in s:
            v = s[key]
            sd = f", SD over seeds {v['sd_over_seeds']:.3f}" if v.get("sd_over_seeds") is not None else ""
            _print(f"AUC {name:<22} {v['auc']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]{sd}")
    if result["tstr_skipped"]:
        _print(f"TSTR skipped: {result['tstr_skipped']}")
    d = s["diff_real_synth_vs_real"]
    _print(f"difference (real + synthetic - real) {d['auc']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}], DeLong p = {d['p_value']:.3g}")
    if path:
        _print(f"result written to {path}")


# ============================================================================================
# reader study (issue 7): study create, serve, analyze, mrmc, export
# ============================================================================================


@study_app.command("create")
def study_create(
    reference: Path = typer.Option(..., "--reference", help="Real reference set (any layout usbench reads)."),
    run: List[Path] = typer.Option(..., "--run", help="Generator run directory (repeat for several)."),
    out: Path = typer.Option(..., "--out", help="New study folder."),
    config: Optional[Path] = typer.Option(None, "--config", help="a TOML file whose 'study' table holds the settings (instructions, questions, 2AFC, ...); flags given win (default: none, the built-in settings)."),
    readers: Optional[str] = typer.Option(None, "--readers", help="Comma-separated reader names (default reader1,reader2)."),
    n_per_source: Optional[int] = typer.Option(None, "--n-per-source", help="Synthetic cases per run (default 20)."),
    prevalence: Optional[float] = typer.Option(None, "--prevalence", help="Share of synthetic cases among the main cases (default 0.5)."),
    size: Optional[int] = typer.Option(None, "--size", help="Every image is shown at SIZE x SIZE pixels (default 256)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of sampling and orders (default 0)."),
    practice: Optional[int] = typer.Option(None, "--practice", help="Practice cases with feedback (not analysed) (default 0)."),
    repeats: Optional[int] = typer.Option(None, "--repeats", help="Main cases shown twice, under a fresh id (intra-reader consistency) (default 0)."),
    washout: Optional[int] = typer.Option(None, "--washout", help="At least this many items between a case and its repeat (default 10)."),
    afc_pairs: Optional[int] = typer.Option(None, "--afc-pairs", help="2AFC pairs (real and synthetic side by side) per run (default 0)."),
    lock_back: Optional[bool] = typer.Option(None, "--lock-back", help="Readers cannot go back and change answers (default: they can)."),
    title: Optional[str] = typer.Option(None, "--title", help="Title shown to readers (default: Which images are real?)."),
    expires_days: Optional[float] = typer.Option(None, "--expires-days", help="Links expire after this many days (default never)."),
    fsync: Optional[bool] = typer.Option(None, "--fsync", help="fsync every answer (survives power cuts; slower) (default: off)."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="Base of the printed links (default http://127.0.0.1:8501)."),
) -> None:
    """Build a blinded reader study, audit its blinding, and print one secret link per reader and one admin link.

    A study whose files or order would tell real from generated images is refused (nothing written).

    Example:

      usbench study create --reference real/ --run runs/sd-busi-1a2b --run runs/phantom-3c4d \\
          --readers alice,bob,carol --n-per-source 30 --practice 4 --repeats 10 --out study/

      usbench study create --config study.toml --reference real/ --run runs/sd-busi-1a2b --out study/
    """
    from rich.progress import Progress

    from usbench.reader_study.builder import StudyConfig, create_study

    flags = {"readers": [r.strip() for r in readers.split(",") if r.strip()] if readers is not None else None,
             "n_per_source": n_per_source, "synthetic_prevalence": prevalence, "size": size, "seed": seed, "practice": practice,
             "repeats": repeats, "washout": washout, "afc_pairs": afc_pairs, "allow_back": None if lock_back is None else not lock_back,
             "title": title, "token_days": expires_days, "fsync_each_rating": fsync, "base_url": base_url}
    flags = {k: v for k, v in flags.items() if v is not None}
    cfg = StudyConfig.from_toml(config, flags) if config is not None else StudyConfig(**flags)
    with Progress(transient=True) as bar:
        task = bar.add_task("re-encoding images", total=None)
        links = create_study(reference, list(run), out, cfg, progress=lambda i, n: bar.update(task, completed=i, total=n))
    _print(f"study written to {out}; blinding audit passed (admin/audit.json); links also in {out / 'admin' / 'links.txt'}, readable only by you")
    for name, link in links.links().items():
        _print(f"{name}\t{link}")


@study_app.command("audit")
def study_audit(
    study: Path = typer.Argument(..., help="Study folder."),
    perms: int = typer.Option(2000, "--permutations", help="Permutations for each p-value."),
    json_out: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
) -> None:
    """Check the blinding: can anything but the pixels tell real from generated images?

    Measures byte size, mtime, inode, listing order, names, dimensions, bit depth, PNG chunks,
    metadata, serving order, repeat positions and 2AFC sides as AUCs with permutation p-values.
    Fails (exit code 2) when one leaks: AUC > 0.65 and significant.

    Example:

      usbench study audit study/
    """
    import json

    from usbench.reader_study.audit import BlindingLeakError, audit_study, format_audit
    from usbench.reader_study.serve import check_study

    check_study(study)
    report = audit_study(study, n_perm=perms)
    _print(json.dumps(report, indent=2) if json_out else format_audit(report))
    if not report["passed"]:
        raise BlindingLeakError(f"the blinding audit of {study} failed: " + format_audit(report).splitlines()[0].removeprefix("FAILED: "),
                                "rebuild the study with `usbench study create`; never serve a leaking study")


readers_app = typer.Typer(help="Add, revoke, re-issue or unlock the readers of a study.", no_args_is_help=True)
study_app.add_typer(readers_app, name="readers")


@readers_app.command("add")
def study_readers_add(
    study: Path = typer.Argument(..., help="Study folder."),
    reader: str = typer.Argument(..., help="New reader name."),
    expires_days: Optional[float] = typer.Option(None, "--expires-days", help="The link expires after this many days (default: never)."),
) -> None:
    """Add a reader (own seeded order over the study's cases) and print their link.

    Example:

      usbench study readers add study/ dave --expires-days 30
    """
    from usbench.reader_study.builder import add_reader
    from usbench.reader_study.serve import check_study

    check_study(study)
    _print(f"{reader}\t{add_reader(study, reader, expires_days)}")


@readers_app.command("revoke")
def study_readers_revoke(
    study: Path = typer.Argument(..., help="Study folder."),
    reader: str = typer.Argument(..., help="Reader name."),
) -> None:
    """Make a reader's link stop working at once (their answers stay).

    Example:

      usbench study readers revoke study/ dave
    """
    from usbench.reader_study.builder import revoke_reader
    from usbench.reader_study.serve import check_study

    check_study(study)
    revoke_reader(study, reader)
    _print(f"{reader}: link revoked")


@readers_app.command("reissue")
def study_readers_reissue(
    study: Path = typer.Argument(..., help="Study folder."),
    reader: str = typer.Argument(..., help="Reader name."),
    expires_days: Optional[float] = typer.Option(None, "--expires-days", help="The new link expires after this many days (default: never)."),
) -> None:
    """Give a reader a new link (the old one stops working; answers and place are kept).

    Example:

      usbench study readers reissue study/ alice
    """
    from usbench.reader_study.builder import reissue_reader
    from usbench.reader_study.serve import check_study

    check_study(study)
    _print(f"{reader}\t{reissue_reader(study, reader, expires_days)}")


@readers_app.command("unlock")
def study_readers_unlock(
    study: Path = typer.Argument(..., help="Study folder."),
    reader: str = typer.Argument(..., help="Reader name."),
) -> None:
    """Let a finished reader change answers again (logged; every earlier answer stays in the log).

    Example:

      usbench study readers unlock study/ alice
    """
    from usbench.reader_study.builder import unlock_reader
    from usbench.reader_study.serve import check_study

    check_study(study)
    unlock_reader(study, reader)
    _print(f"{reader}: unlocked")


@study_app.command("serve")
def study_serve(
    study: Path = typer.Argument(..., help="Study folder."),
    port: int = typer.Option(8501, "--port", help="TCP port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; keep 127.0.0.1 behind a reverse proxy."),
    base_path: str = typer.Option("", "--base-path", help="URL path prefix, e.g. studyA behind a proxy (default: none, served at /)."),
) -> None:
    """Serve the reader app (Streamlit) for a study.

    Example:

      usbench study serve study/ --port 8601

      usbench study serve studyB/ --port 8602 --base-path studyB
    """
    from usbench.reader_study.serve import serve

    raise typer.Exit(serve(study, port, host, base_path))


@study_app.command("progress")
def study_progress(
    study: Path = typer.Argument(..., help="Study folder."),
    token: Optional[str] = typer.Option(None, "--token", help="Show only the reader owning this token (default: every reader)."),
) -> None:
    """Show how far every reader (or the reader owning --token) is.

    Example:

      usbench study progress study/
    """
    from usbench.errors import InputError
    from usbench.reader_study.serve import check_study
    from usbench.reader_study.store import DB_NAME, RatingsStore

    check_study(study)
    with RatingsStore(Path(study) / DB_NAME) as s:
        rows = s.progress()
        if token is not None:
            who = s.reader_for_token(token)
            if who is None:
                raise InputError("unknown token", "copy the link from admin/links.txt of this study")
            rows = [r for r in rows if r["reader"] == who[0]] if not who[1] else rows
    for r in rows:
        _print(f"{r['reader']}\t{r['rated']}/{r['total']}")


@study_app.command("analyze")
def study_analyze(
    study: Path = typer.Argument(..., help="Study folder."),
    cov: str = typer.Option("delong", "--cov", help="AUC covariance: delong (any design), jackknife or unbiased (fully crossed only; refused otherwise)."),
    partial: bool = typer.Option(False, "--partial", help="Analyse the cases every reader has rated (refused below 3 real and 3 synthetic per generator)."),
    boot: int = typer.Option(2000, "--boot", help="Bootstrap replicates for fool-rate intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    json_out: bool = typer.Option(False, "--json", help="Print analysis.json instead of the table."),
) -> None:
    """Reader statistics: detection, fool rate per generator, MRMC, agreement; writes analysis.* into STUDY.

    Example:

      usbench study analyze study/
    """
    import json

    from usbench.reader_study.analysis import analyze, summary_markdown, write_analysis
    from usbench.reader_study.serve import check_study

    check_study(study)
    res = analyze(study, cov=cov, n_boot=boot, seed=seed, partial=partial)
    files = write_analysis(study, res)
    _print(json.dumps(res, indent=2) if json_out else summary_markdown(res))
    if not json_out:
        _print("written: " + ", ".join(str(f) for f in files))


@study_app.command("mrmc")
def study_mrmc(
    ratings: Path = typer.Argument(..., help="Long CSV with reader,treatment,case,truth,rating."),
    cov: str = typer.Option("jackknife", "--cov", help="jackknife, delong or unbiased."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the tests and intervals."),
    json_out: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """MRMC ROC analysis (Obuchowski-Rockette/Hillis and DBM) of any long-format ratings table.

    Example:

      usbench study mrmc vandyke.csv --cov jackknife

      usbench study mrmc study_export.csv --cov delong --json
    """
    import json

    from usbench.reader_study import mrmc as M

    res = M.mrmc(M.read_ratings_csv(ratings), cov=cov, alpha=alpha, source=str(ratings))
    _print(json.dumps(res.to_dict(), indent=2) if json_out else M.format_result(res))


@study_app.command("export")
def study_export(
    study: Path = typer.Argument(..., help="Study folder."),
    fmt: str = typer.Option("long", "--format", help="long (first and final answers), log (every answer), afc, mrmcaov (also RJafroc) or imrmc."),
    out: Path = typer.Option(..., "--out", help="Output file."),
) -> None:
    """Export the ratings (long CSV, MRMCaov/RJafroc CSV, iMRMC input).

    Example:

      usbench study export study/ --format imrmc --out ratings.imrmc
    """
    from usbench.reader_study.export import export
    from usbench.reader_study.serve import check_study

    check_study(study)
    _print(f"written {export(study, fmt, out)}")


INTERRUPTED = "interrupted; rerun the same command to resume"


def _usage_line(exc) -> str:
    """typer's (or click's) usage error as one line, with where to read more."""
    msg = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None and getattr(ctx, "command_path", "") else ""
    return f"error: {msg}{where}"


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the console script: user errors become one line and exit code 2; Ctrl-C is 130."""
    import click
    from typer._click import exceptions as typer_click

    from usbench import outputs

    import rich

    # every progress bar on stderr (stdout holds the result and nothing else), and none when stderr is no terminal
    rich.reconfigure(stderr=True, quiet=not sys.stderr.isatty())
    code = 0
    try:
        rv = app(args=argv, prog_name="usbench", standalone_mode=False)
        code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0  # typer returns Exit codes (Ctrl-C: 130)
    except UsbenchError as err:
        if isinstance(err, outputs.WriteError):
            outputs.remove_created()  # a full or read-only disk: nothing partial is left
        typer.echo(f"error: {err}", err=True)
        return err.exit_code
    except typer.Exit as exc:  # raised by commands that end early on purpose
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        code = 130
    except (typer_click.NoArgsIsHelpError, click.exceptions.NoArgsIsHelpError) as exc:
        exc.show()  # `usbench` or `usbench data` alone: the help, as asked
        return 2
    except (typer_click.ClickException, click.exceptions.ClickException) as exc:  # typer 0.29 raises its own copy
        typer.echo(_usage_line(exc), err=True)
        return exc.exit_code
    except OSError as exc:
        if not outputs.is_disk_error(exc):
            raise
        outputs.remove_created()
        typer.echo(f"error: {outputs.write_error(exc)}", err=True)
        return 2
    if code == 130:
        typer.echo(INTERRUPTED, err=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
