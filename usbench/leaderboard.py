"""The leaderboard: one row per (generator run, subset), automated scores beside human ratings.

Column order is stable and documented in docs/leaderboard.md:

1. identity: ``run_id, generator, subset, reference, n_generated, n_reference``
2. metrics, in :data:`METRIC_ORDER` (others after, alphabetically): for each metric ``<m>``,
   ``<m>, <m>_ci_low, <m>_ci_high``
3. reader-study columns (``reader_*``) and task columns (``utility_*``), when present
4. ``skipped``: metrics that could not run, with the reason
5. provenance: :data:`PROVENANCE_COLUMNS`
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable

from usbench.common import SUBSET_ALL, label_rank
from usbench.errors import InputError
from usbench.imageset import atomic_write_text
from usbench.results import RunResult

ID_COLUMNS = ["run_id", "generator", "subset", "reference", "n_generated", "n_reference"]
METRIC_ORDER = [
    "fid", "fd_inf", "kid", "precision", "recall", "density", "coverage", "frd",
    "fid_radiomics", "kid_radiomics", "precision_radiomics", "recall_radiomics", "density_radiomics", "coverage_radiomics",
    "ms_ssim_diversity", "lpips_diversity", "memorization", "memorization_ncc", "authpct",
    "mask_dice", "mask_hd95", "mask_dice_ratio", "lesion_presence",
]
PROVENANCE_COLUMNS = [
    "seed", "image_size", "n_bootstrap", "ci_level", "resize_protocol", "extractors_sha256", "generator_fingerprint",
    "generator_settings",
    "generated_hash", "reference_hash", "split", "usbench_version", "torch_version", "torch_fidelity_version",
    "diffusers_version", "numpy_version", "created",
]
# The run settings that change the numbers: rows that differ in one of them are different runs, and
# the printed table says how (``phantom (n=50)`` beside ``phantom (n=20)``), never two rows "phantom".
SETTING_COLUMNS = ["n_generated", "n_reference", "seed", "image_size", "n_bootstrap", "split", "extractors_sha256",
                   "generator_settings", "reference_hash"]
# Direction of each metric column (True: higher is better), from the results' own higher_is_better.
DIRECTIONS: dict[str, bool] = {}
# How the images were generated (run.json; diffusion generators): PLMS and DPM++ rows are told apart.
GENERATION_COLUMNS = ["sampler", "steps", "guidance", "dtype", "batch_size", "mask_fit"]
# How fast and how big: recorded, but not settings (a rerun on another machine is the same run).
COST_COLUMNS = ["images_per_second", "peak_memory_mb"]


def rows_from_run(run_dir: Path) -> list[dict[str, Any]]:
    """Rows of one run directory (``run.json`` + ``metrics.json``), one per subset."""
    return rows_from_result(RunResult.read(run_dir))


def rows_from_result(run: RunResult) -> list[dict[str, Any]]:
    """Rows of one run, one per subset it has values or skips on."""
    info, ev = run.info, run.evaluation
    prov = ev.provenance
    by_subset: dict[str, dict[str, Any]] = {}
    skipped: dict[str, list[str]] = {}
    for s in ev.skipped:
        by_subset.setdefault(s.subset, {})
        skipped.setdefault(s.subset, []).append(f"{s.metric}: {s.reason}")
    for e in ev.entries:
        row = by_subset.setdefault(e.subset, {})
        col = e.column
        row[col] = _value(e.value)
        row[f"{col}_ci_low"] = _value(e.ci_low)
        row[f"{col}_ci_high"] = _value(e.ci_high)
        if "weights_official" in e.details:  # a metric on pretrained weights: were they the pinned, official file?
            row[f"{col}_weights_official"] = bool(e.details["weights_official"])
        DIRECTIONS[col] = bool(e.higher_is_better)
        row["n_generated"] = max(row.get("n_generated", 0), e.n_generated)
        row["n_reference"] = max(row.get("n_reference", 0), e.n_reference)
        row.setdefault("ci_level", e.ci_level)
    extra = _extra_columns(run.dir)
    versions = info.versions
    rows = []
    for subset, values in sorted(by_subset.items(), key=lambda kv: label_rank(kv[0])):
        rows.append({
            "run_id": info.run_id, "generator": info.generator, "subset": subset,
            "reference": info.reference, **values, **(extra if subset == SUBSET_ALL else {}),
            **{c: info.extra[c] for c in GENERATION_COLUMNS + COST_COLUMNS if info.extra.get(c) is not None},
            "skipped": "; ".join(sorted(skipped.get(subset, []))),
            "seed": info.seed, "image_size": info.image_size, "n_bootstrap": ev.n_bootstrap,
            "resize_protocol": prov.get("resize_protocol", ""),
            "extractors_sha256": ";".join(f"{k}={v}" for k, v in sorted(prov.get("extractors_sha256", {}).items())),
            "generator_fingerprint": info.generator_fingerprint,
            "generator_settings": ";".join(f"{k}={v}" for k, v in sorted((info.generator_config or {}).items())),
            "generated_hash": ev.generated_hash, "reference_hash": info.reference_hash, "split": info.split,
            "usbench_version": versions.get("usbench", ""), "torch_version": versions.get("torch", ""),
            "torch_fidelity_version": versions.get("torch-fidelity", ""), "diffusers_version": versions.get("diffusers", ""),
            "numpy_version": versions.get("numpy", ""), "created": info.created,
        })
    return rows


def _value(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _extra_columns(run_dir: Path) -> dict[str, Any]:
    """Task columns that other commands left beside the run (``utility.json`` of ``usbench utility``)."""
    p = run_dir / "utility.json"
    if not p.is_file():
        return {}
    from usbench.tasks.utility import leaderboard_columns

    return leaderboard_columns(json.loads(p.read_text()))


def find_runs(paths: Iterable[Path]) -> list[Path]:
    """Run directories under the given paths (a run dir, a benchmark ``out`` dir, or ``out/runs``)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise InputError(f"{p} does not exist", "pass run directories or benchmark output folders")
        if (p / "run.json").is_file():
            found.append(p)
        else:
            found.extend(sorted(d.parent for d in p.glob("**/run.json")))
    if not found:
        raise InputError(f"no usbench runs under {', '.join(map(str, paths))}", "run `usbench run` first, or point to its --out")
    return sorted(set(found))


def rows_from_runs(runs: Path | Iterable[Path], reference_hash: str | None = None,
                   reader_columns: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    paths = [runs] if isinstance(runs, (str, Path)) else list(runs)
    rows: list[dict[str, Any]] = []
    for run_dir in find_runs(paths):
        for row in rows_from_run(run_dir):
            if reference_hash and row["reference_hash"] != reference_hash:
                continue
            if reader_columns and row["subset"] == "all" and row["run_id"] in reader_columns:
                row.update(reader_columns[row["run_id"]])
            rows.append(row)
    rows.sort(key=lambda r: (r["generator"], r["run_id"], label_rank(r["subset"]), r["subset"]))
    return rows


def columns(rows: list[dict[str, Any]]) -> list[str]:
    present = set().union(*(r.keys() for r in rows)) if rows else set()
    bases = [m for m in METRIC_ORDER if m in present]
    bases += sorted(
        k for k in present
        if k not in bases and k not in ID_COLUMNS and k not in PROVENANCE_COLUMNS
        and k not in SETTING_COLUMNS + GENERATION_COLUMNS + COST_COLUMNS and k != "skipped"
        and not k.endswith(("_ci_low", "_ci_high", "_weights_official")) and not k.startswith(("reader_", "utility_"))
    )
    metric_cols = [c for b in bases for c in (b, f"{b}_ci_low", f"{b}_ci_high", f"{b}_weights_official") if c in present]
    extra = sorted(k for k in present if k.startswith("reader_")) + sorted(k for k in present if k.startswith("utility_"))
    # SETTING_COLUMNS are all ID or provenance columns already; only how the images were generated
    # (sampler, steps, ...) sits between the IDs and the metrics, and the cost after the metrics.
    generation = [c for c in GENERATION_COLUMNS if c in present]
    cost = [c for c in COST_COLUMNS if c in present]
    return list(dict.fromkeys(ID_COLUMNS + generation + metric_cols + extra + cost + ["skipped"] + PROVENANCE_COLUMNS
                              + [c for c in SETTING_COLUMNS if c in present]))


def _fmt(v: Any, digits: int | None = 4) -> str:
    """A cell: blank for missing, full precision (``digits=None``, the CSV) or ``digits`` significant."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return repr(v) if digits is None else f"{v:.{digits}g}"
    return str(v)


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    cols = columns(rows)
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_fmt(r.get(c), None) for c in cols])
    return buf.getvalue()


def summary_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The columns a person reads first: identity and metric values (no intervals, no provenance)."""
    cols = columns(rows)
    return [c for c in cols if c in ("generator", "subset", "n_generated")
            or (c not in ID_COLUMNS and c not in PROVENANCE_COLUMNS and c != "skipped" and not c.endswith(("_ci_low", "_ci_high")))]


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and math.isnan(v)):
        return None
    return float(v)


def _with_ci(r: dict[str, Any], c: str, digits: int = 4) -> str:
    """``value [low, high]`` on one line (the interval only when there is one)."""
    v = _num(r.get(c))
    if v is None:
        return _fmt(r.get(c))
    lo, hi = _num(r.get(f"{c}_ci_low")), _num(r.get(f"{c}_ci_high"))
    if lo is not None and hi is not None:
        return f"{_fmt(v, digits)} [{_fmt(lo, digits)}, {_fmt(hi, digits)}]"
    return _fmt(v, digits)


def header(c: str) -> str:
    """A metric's column header with its direction: ``frd ↓``, ``recall ↑``."""
    d = DIRECTIONS.get(c)
    return c if d is None else f"{c} {'↑' if d else '↓'}"


def best_rows(rows: list[dict[str, Any]], c: str) -> set[int]:
    """Indices of the rows holding the best value of column ``c`` (none when the direction is unknown
    or fewer than two rows have a value)."""
    d = DIRECTIONS.get(c)
    vals = [(i, _num(r.get(c))) for i, r in enumerate(rows)]
    vals = [(i, v) for i, v in vals if v is not None]
    if d is None or len(vals) < 2:
        return set()
    target = max(v for _, v in vals) if d else min(v for _, v in vals)
    return {i for i, v in vals if v == target}


def display_names(rows: list[dict[str, Any]]) -> list[str]:
    """The generator of each row, with the settings that tell apart runs of one generator.

    Two runs of ``phantom`` with different ``--n`` print as ``phantom (n=20)`` and ``phantom (n=50)``;
    when no shown setting differs (another seed, another config), the run id tells them apart.
    """
    runs_of: dict[str, dict[str, dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: r["subset"] != "all"):  # a run's settings are those of its "all" row
        runs_of.setdefault(r["generator"], {}).setdefault(r["run_id"], r)
    names = []
    for row in rows:
        r = runs_of[row["generator"]][row["run_id"]]
        runs = list(runs_of[r["generator"]].values())
        if len(runs) == 1:
            names.append(r["generator"])
            continue
        differ = [c for c in SETTING_COLUMNS + GENERATION_COLUMNS if len({str(x.get(c, "")) for x in runs}) > 1]
        short = {"n_generated": "n", "n_reference": "n_ref", "n_bootstrap": "bootstrap", "image_size": "size",
                 "extractors_sha256": "weights", "generator_settings": "", "reference_hash": "reference"}
        parts = []
        for c in differ:
            v = str(r.get(c, ""))
            if c in ("extractors_sha256", "reference_hash"):
                v = v.split("=")[-1][:8]
            parts.append(f"{short.get(c, c)}={v}" if short.get(c, c) else (v or "defaults"))
        names.append(f"{r['generator']} ({', '.join(parts) if parts else r['run_id']})")
    return names


def metric_columns(rows: list[dict[str, Any]]) -> list[str]:
    return [c for c in summary_columns(rows) if c not in ("generator", "subset", "n_generated")]


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """Every row (all subsets): arrows in the headers, the best value of each subset in bold."""
    metrics = metric_columns(rows)
    names = display_names(rows)
    cols = ["generator", "subset", "n_generated", *metrics]
    lines = ["| " + " | ".join(header(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    best = {c: _best_by_subset(rows, c) for c in metrics}
    for i, r in enumerate(rows):
        cells = [names[i], str(r["subset"]), _fmt(r.get("n_generated"))]
        cells += [f"**{_with_ci(r, c)}**" if i in best[c] else _with_ci(r, c) for c in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _best_by_subset(rows: list[dict[str, Any]], c: str) -> set[int]:
    out: set[int] = set()
    for subset in {r["subset"] for r in rows}:
        idx = [i for i, r in enumerate(rows) if r["subset"] == subset]
        out |= {idx[j] for j in best_rows([rows[i] for i in idx], c)}
    return out


TABLE_CSS = ("div.lb{overflow-x:auto;max-width:100%}table.leaderboard{border-collapse:collapse;font-size:13px}"
             "table.leaderboard td,table.leaderboard th{border:1px solid #ccc;padding:3px 6px;white-space:nowrap}"
             "table.leaderboard td.num{text-align:right;font-variant-numeric:tabular-nums}"
             "table.leaderboard td.best{font-weight:bold;background:#e6f4e6}"
             "table.leaderboard .ci{color:#666;font-size:11px}")


def to_html(rows: list[dict[str, Any]], subsets: str = "all-first") -> str:
    """The table in its own scrolling box: one line per cell, arrows, the best value of each subset marked."""
    metrics = metric_columns(rows)
    names = display_names(rows)
    best = {c: _best_by_subset(rows, c) for c in metrics}
    head = "".join(f"<th>{html.escape(header(c))}</th>" for c in ["generator", "subset", "n", *metrics])
    body = []
    for i, r in enumerate(rows):
        cells = [f"<td>{html.escape(names[i])}</td>", f"<td>{html.escape(str(r['subset']))}</td>",
                 f"<td class=num>{html.escape(_fmt(r.get('n_generated')))}</td>"]
        for c in metrics:
            v, lo, hi = _num(r.get(c)), _num(r.get(f"{c}_ci_low")), _num(r.get(f"{c}_ci_high"))
            text = html.escape(_fmt(v, 4) if v is not None else _fmt(r.get(c)))
            if v is not None and lo is not None and hi is not None:
                text += f' <span class=ci>[{_fmt(lo, 3)}, {_fmt(hi, 3)}]</span>'
            mark = " best" if i in best[c] else ""
            title = ' title="best of this subset"' if mark else ""
            cells.append(f"<td class='num{mark}'{title}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class=lb><table class="leaderboard"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
            "</tbody></table></div>")


def to_rich(rows: list[dict[str, Any]], all_subsets: bool = False, width: int | None = None) -> str:
    """The table a person reads in a terminal: the ``all`` rows (every subset with ``all_subsets``),
    compact, arrows in the headers, the best value of each column marked ``*``, intervals on one line."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    shown = rows if all_subsets else [r for r in rows if r["subset"] == "all"]
    if not shown:
        return "no rows\n"
    metrics = [c for c in metric_columns(shown) if any(_num(r.get(c)) is not None or r.get(c) not in (None, "") for r in shown)]
    names = display_names(shown)
    best = {c: _best_by_subset(shown, c) for c in metrics}
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), show_edge=False)
    table.add_column("generator", no_wrap=True)
    if all_subsets:
        table.add_column("subset", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    for c in metrics:
        table.add_column(header(c), justify="right", no_wrap=True)
    for i, r in enumerate(shown):
        cells = [names[i]] + ([str(r["subset"])] if all_subsets else []) + [_fmt(r.get("n_generated"))]
        for c in metrics:
            cell = _with_ci(r, c, 3)
            cells.append(f"[bold]{cell}*[/bold]" if i in best[c] else cell)
        table.add_row(*cells)
    buf = io.StringIO()
    console = Console(file=buf, width=width or 10_000, force_terminal=False, color_system=None, highlight=False)
    console.print(table)
    text = "\n".join(line.rstrip() for line in buf.getvalue().splitlines() if line.strip())
    return text + "\n"


def footer(rows: list[dict[str, Any]], all_subsets: bool = False) -> str:
    """What the printed table needs to be read right: marks, intervals, settings, what was skipped."""
    alls = [r for r in rows if r["subset"] == "all"] or rows
    level = next((r.get("ci_level") for r in alls if r.get("ci_level")), 0.95)
    boots = sorted({str(r.get("n_bootstrap")) for r in alls if r.get("n_bootstrap") not in (None, "")})
    sizes = sorted({str(r.get("image_size")) for r in alls if r.get("image_size") not in (None, "")})
    lines = [f"* best of the column; ↑ higher is better, ↓ lower; [low, high]: {float(level):.0%} bootstrap interval"
             + (f" ({', '.join(boots)} resamples)" if boots else "") + (f"; images at {', '.join(sizes)} px" if sizes else "")]
    if not all_subsets and any(r["subset"] != "all" for r in rows):
        lines.append("per-label rows: --all-subsets, or leaderboard.md")
    for reason, metrics in skip_reasons(alls).items():
        lines.append(f"skipped {', '.join(metrics)}: {reason}")
    return "\n".join(lines) + "\n"


def skip_reasons(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each reason a metric was skipped, once, with the metrics it stopped (subset "all")."""
    reasons: dict[str, list[str]] = {}
    for r in rows:
        if r["subset"] != "all":
            continue
        for item in filter(None, str(r.get("skipped", "")).split("; ")):
            metric, _, reason = item.partition(": ")
            names = reasons.setdefault(reason, [])
            if metric not in names:
                names.append(metric)
    return reasons


def write_all(rows: list[dict[str, Any]], csv_path: Path) -> None:
    """Write ``leaderboard.csv`` and its ``.md`` and ``.html`` renderings beside it (atomically)."""
    from usbench import outputs

    csv_path = Path(csv_path)
    paths = [csv_path, csv_path.with_suffix(".md"), csv_path.with_suffix(".html")]
    atomic_write_text(paths[0], to_csv(rows))
    atomic_write_text(paths[1], to_markdown(rows))
    atomic_write_text(paths[2], "<!doctype html><meta charset=utf-8><title>usbench leaderboard</title>"
                      + f"<style>{TABLE_CSS}</style>" + to_html(rows))
    outputs.record(csv_path.parent, paths)  # usbench's own: the next run may overwrite them, nobody else's


def reader_columns(studies: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """Reader-study columns by run id, from the studies' analysis (empty without studies)."""
    out: dict[str, dict[str, Any]] = {}
    studies = list(studies or [])
    if not studies:
        return out
    from usbench.reader_study.analysis import leaderboard_columns

    for study in studies:
        for run_id, cols in leaderboard_columns(Path(study)).items():
            out.setdefault(run_id, {}).update(cols)
    return out
