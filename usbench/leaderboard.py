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
    "generated_hash", "reference_hash", "split", "usbench_version", "torch_version", "torch_fidelity_version",
    "diffusers_version", "numpy_version", "created",
]


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
            "skipped": "; ".join(sorted(skipped.get(subset, []))),
            "seed": info.seed, "image_size": info.image_size, "n_bootstrap": ev.n_bootstrap,
            "resize_protocol": prov.get("resize_protocol", ""),
            "extractors_sha256": ";".join(f"{k}={v}" for k, v in sorted(prov.get("extractors_sha256", {}).items())),
            "generator_fingerprint": info.generator_fingerprint, "generated_hash": ev.generated_hash,
            "reference_hash": info.reference_hash, "split": info.split,
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
        if k not in bases and k not in ID_COLUMNS and k not in PROVENANCE_COLUMNS and k != "skipped"
        and not k.endswith(("_ci_low", "_ci_high", "_weights_official")) and not k.startswith(("reader_", "utility_"))
    )
    metric_cols = [c for b in bases for c in (b, f"{b}_ci_low", f"{b}_ci_high", f"{b}_weights_official") if c in present]
    extra = sorted(k for k in present if k.startswith("reader_")) + sorted(k for k in present if k.startswith("utility_"))
    return ID_COLUMNS + metric_cols + extra + ["skipped"] + PROVENANCE_COLUMNS


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


def _with_ci(r: dict[str, Any], c: str) -> str:
    v = _fmt(r.get(c))
    lo, hi = r.get(f"{c}_ci_low"), r.get(f"{c}_ci_high")
    if v and lo is not None and hi is not None and not (isinstance(lo, float) and math.isnan(lo)):
        return f"{_fmt(float(v))} [{_fmt(lo)}, {_fmt(hi)}]"
    return v


def to_markdown(rows: list[dict[str, Any]]) -> str:
    cols = summary_columns(rows)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_with_ci(r, c) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def to_html(rows: list[dict[str, Any]]) -> str:
    cols = summary_columns(rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_with_ci(r, c))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f'<table class="leaderboard"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def write_all(rows: list[dict[str, Any]], csv_path: Path) -> None:
    """Write ``leaderboard.csv`` and its ``.md`` and ``.html`` renderings beside it (atomically)."""
    csv_path = Path(csv_path)
    atomic_write_text(csv_path, to_csv(rows))
    atomic_write_text(csv_path.with_suffix(".md"), to_markdown(rows))
    atomic_write_text(csv_path.with_suffix(".html"), "<!doctype html><meta charset=utf-8><title>usbench leaderboard</title>"
                      + to_html(rows))


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
