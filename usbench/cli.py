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


# ============================================================================================
# reader study (issue 7): study create, serve, analyze, mrmc, export
# ============================================================================================


@study_app.command("create")
def study_create(
    reference: Path = typer.Option(..., "--reference", help="Real reference set (any layout usbench reads)."),
    run: List[Path] = typer.Option(..., "--run", help="Generator run directory (repeat for several)."),
    out: Path = typer.Option(..., "--out", help="New study folder."),
    readers: str = typer.Option("reader1,reader2", "--readers", help="Comma-separated reader names."),
    n_per_source: int = typer.Option(20, "--n-per-source", help="Synthetic cases per run."),
    prevalence: float = typer.Option(0.5, "--prevalence", help="Share of synthetic cases among the main cases."),
    size: int = typer.Option(256, "--size", help="Every image is shown at SIZE x SIZE pixels."),
    seed: int = typer.Option(0, "--seed"),
    practice: int = typer.Option(0, "--practice", help="Practice cases with feedback (not analysed)."),
    repeats: int = typer.Option(0, "--repeats", help="Main cases shown twice (intra-reader consistency)."),
    lock_back: bool = typer.Option(False, "--lock-back", help="Readers cannot go back and change answers."),
    title: str = typer.Option("Which images are real?", "--title"),
    fsync: bool = typer.Option(False, "--fsync", help="fsync every rating (survives power cuts; slower)."),
    base_url: str = typer.Option("http://127.0.0.1:8501", "--base-url", help="Base of the printed links."),
) -> None:
    """Build a blinded reader study and print one secret link per reader and one admin link.

    Example:

      usbench study create --reference real/ --run runs/sd-busi-1a2b --run runs/phantom-3c4d \\
          --readers alice,bob,carol --n-per-source 30 --practice 4 --repeats 10 --out study/
    """
    from rich.progress import Progress

    from usbench.reader_study.builder import StudyConfig, create_study

    cfg = StudyConfig(readers=[r.strip() for r in readers.split(",") if r.strip()], n_per_source=n_per_source,
                      synthetic_prevalence=prevalence, size=size, seed=seed, practice=practice, repeats=repeats,
                      allow_back=not lock_back, title=title, fsync_each_rating=fsync, base_url=base_url)
    with Progress(transient=True) as bar:
        task = bar.add_task("re-encoding images", total=None)
        links = create_study(reference, list(run), out, cfg, progress=lambda i, n: bar.update(task, completed=i, total=n))
    _print(f"study written to {out} (links also in {out / 'admin' / 'links.txt'}, readable only by you)")
    for name, link in links.links().items():
        _print(f"{name}\t{link}")


@study_app.command("serve")
def study_serve(
    study: Path = typer.Argument(..., help="Study folder."),
    port: int = typer.Option(8501, "--port"),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; keep 127.0.0.1 behind a reverse proxy."),
    base_path: str = typer.Option("", "--base-path", help="URL path prefix, e.g. studyA behind a proxy."),
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
    token: Optional[str] = typer.Option(None, "--token", help="Show only the reader owning this token."),
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
    cov: str = typer.Option("delong", "--cov", help="AUC covariance: delong (nested designs), jackknife, unbiased."),
    partial: bool = typer.Option(False, "--partial", help="Analyse the cases every reader has finished."),
    boot: int = typer.Option(2000, "--boot", help="Bootstrap replicates for fool-rate intervals."),
    seed: int = typer.Option(0, "--seed"),
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
    alpha: float = typer.Option(0.05, "--alpha"),
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
    fmt: str = typer.Option("long", "--format", help="long, mrmcaov (also RJafroc) or imrmc."),
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
