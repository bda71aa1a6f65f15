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
    from usbench.datasets.phantom import make_phantom_dataset

    counts = make_phantom_dataset(out, n=n, seed=seed, size=size, progress=True)
    summary = ", ".join(f"{c} {label}" for label, c in counts.items())
    _print(f"wrote {sum(counts.values())} phantom images ({summary}) at {size}x{size} to {out}")


# ============================================================================================
# metrics (issue 4)
# ============================================================================================


# ============================================================================================
# diffusion (issue 5): finetune sd-busi, finetune controlnet-busi
# ============================================================================================


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
