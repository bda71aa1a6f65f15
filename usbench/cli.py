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


# ============================================================================================
# task metrics (issue 6): segmenter train, utility
# ============================================================================================


@segmenter_app.command("train")
def segmenter_train(
    data: str = typer.Option(..., "--data", help="Reference set with lesion masks: a dataset folder, an ImageSet, or phantom-busi."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for segmenter.pt and card.json [default: ~/.cache/usbench/models/segmenter]."),
    split: str = typer.Option("seeded", "--split", help="Train/test split: seeded (stratified, grouped) or paper (BUSI's hold-out)."),
    epochs: int = typer.Option(40, "--epochs", help="Training epochs (the best validation epoch is kept)."),
    size: int = typer.Option(256, "--size", help="Image size the U-Net trains and segments at."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the validation hold-out and training."),
    batch_size: int = typer.Option(16, "--batch-size"),
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
    resnet_weights: Optional[Path] = typer.Option(None, "--resnet-weights", help="torchvision resnet18-f37072fd.pth (ImageNet); random init when absent."),
    size: int = typer.Option(0, "--size", help="Image size (0: 64 for small-cnn, 224 for resnet18)."),
    epochs: int = typer.Option(30, "--epochs", help="Passes over the real training split (every arm gets that many steps)."),
    split: str = typer.Option("seeded", "--split", help="seeded or paper."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for utility.json."),
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
