"""The HTML report of a benchmark: sample grids per generator, metric plots with intervals.

Figures are PNGs under ``<out>/figures/`` so they can be reused in papers; ``report.html``
links them beside the leaderboard table.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np

from usbench import leaderboard
from usbench.imageset import ImageSet, atomic_write_bytes, atomic_write_text
from usbench.results import BenchmarkResult, RunResult


def _save_png(image: Any, path: Path) -> Path:
    """A PIL image written atomically (a full disk never leaves a truncated PNG)."""
    import io as _io

    buf = _io.BytesIO()
    image.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return path


def sample_grid(images: ImageSet, path: Path, per_label: int = 6, size: int = 128, seed: int = 0) -> Path:
    """A grid of ``per_label`` images per label (rows), lesion outlines not drawn: what a reader sees.

    Each row starts with its label and how many images the set has of it; a label with fewer images
    leaves its row short (white), never padded with black tiles that look like images.
    """
    from PIL import Image, ImageDraw

    labels = images.labels or [""]
    rng = np.random.default_rng(seed)
    margin, pad = 110, 2
    width = margin + per_label * (size + 2 * pad)
    grid = Image.new("L", (width, len(labels) * (size + 2 * pad)), 255)
    draw = ImageDraw.Draw(grid)
    for row, label in enumerate(labels):
        recs = [r for r in images.records if r.label == label]
        pick = sorted(rng.choice(len(recs), size=min(per_label, len(recs)), replace=False).tolist()) if recs else []
        y = row * (size + 2 * pad)
        draw.text((6, y + size // 2 - 12), label or "(unlabelled)", fill=0)
        draw.text((6, y + size // 2 + 2), f"{len(recs)} image{'s' if len(recs) != 1 else ''}", fill=90)
        for k, i in enumerate(pick):
            tile = Image.fromarray(images.load_image(recs[i], size))
            grid.paste(tile, (margin + k * (size + 2 * pad) + pad, y + pad))
    return _save_png(grid, path)


def metric_plot(rows: list[dict[str, Any]], metric: str, path: Path) -> Path | None:
    """Point estimates with interval bars of one metric across generators (subset "all")."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [r for r in rows if r["subset"] == "all" and isinstance(r.get(metric), (int, float)) and not math.isnan(r[metric])]
    if not pts:
        return None
    names = leaderboard.display_names(pts)
    vals = np.array([r[metric] for r in pts], dtype=float)
    lo = np.array([r.get(f"{metric}_ci_low", np.nan) if r.get(f"{metric}_ci_low") is not None else np.nan for r in pts], float)
    hi = np.array([r.get(f"{metric}_ci_high", np.nan) if r.get(f"{metric}_ci_high") is not None else np.nan for r in pts], float)
    err = np.vstack([np.nan_to_num(vals - lo), np.nan_to_num(hi - vals)])
    fig, ax = plt.subplots(figsize=(5, 0.45 * len(pts) + 1.2))
    ax.errorbar(vals, np.arange(len(pts)), xerr=np.clip(err, 0, None), fmt="o", capsize=4)
    ax.set_yticks(np.arange(len(pts)), names)
    ax.invert_yaxis()
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))  # 300000 labels ran into each other
    ax.grid(axis="x", alpha=0.3)
    d = leaderboard.DIRECTIONS.get(metric)
    ax.set_xlabel(metric if d is None else f"{metric} ({'higher' if d else 'lower'} is better)")
    fig.tight_layout()
    import io as _io

    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def closest_pairs_figure(run: RunResult, train: ImageSet, path: Path, k: int = 4, size: int = 96) -> Path | None:
    """The ``k`` generated images closest to a training image (memorization), each beside its neighbour."""
    from PIL import Image

    pairs = []
    for e in run.evaluation.entries:
        if e.metric == "memorization" and e.subset == "all" and e.name == "memorization-ncc":
            pairs = e.details.get("closest_pairs", [])
    if not pairs or train is None:
        return None
    images = run.images
    gen_by_id = {r.id: r for r in images.records}
    train_by_id = {r.id: r for r in train.records}
    tiles = []
    for gid, tid, _sim in pairs[:k]:
        if gid in gen_by_id and tid in train_by_id:
            g = images.load_image(gen_by_id[gid], size)
            t = train.load_image(train_by_id[tid], size)
            tiles.append(np.concatenate([np.pad(g, 2, constant_values=255), np.pad(t, 2, constant_values=255)], axis=1))
    if not tiles:
        return None
    return _save_png(Image.fromarray(np.concatenate(tiles, axis=0)), path)


def human_section(rows: list[dict[str, Any]], fig_dir: Path) -> list[str]:
    """Spearman correlation of each automated metric with the readers' fool rate, with scatter plots."""
    if not any(r.get("reader_fool_rate") not in (None, "") for r in rows):
        return []
    from usbench.reader_study.analysis import scatter_metric_vs_human, spearman_vs_metrics

    overall = [r for r in rows if r["subset"] == "all"]
    metrics = [c for c in leaderboard.summary_columns(rows)
               if c not in ("generator", "subset", "n_generated") and not c.startswith(("reader_", "utility_"))]
    parts = ["<h2>Automated metrics vs human realism</h2><p>Spearman correlation across generators between each "
             "metric and the readers' fool rate (share of synthetic images rated real).</p><table><tr><th>metric</th>"
             "<th>rho</th><th>p</th><th>generators</th></tr>"]
    for c in spearman_vs_metrics(overall, metrics):
        parts.append(f"<tr><td>{html.escape(c['metric'])}</td><td>{c['rho']:.3f}</td><td>{c['p']:.3g}</td><td>{c['n']}</td></tr>")
    parts.append("</table>")
    for m in metrics:
        p = scatter_metric_vs_human(overall, m, fig_dir / f"human_vs_{m}.png", label_column="generator")
        parts.append(f'<img src="figures/{p.name}" alt="{html.escape(m)} vs fool rate" style="max-width:32%">')
    return parts


def write_report(result: BenchmarkResult, out: Path | None = None) -> Path:
    """``report.html`` of a benchmark (into ``result.out`` unless ``out`` is given), with its figures."""
    out = Path(out if out is not None else result.out)
    rows = result.rows
    fig_dir = out / "figures"
    parts = ["<!doctype html><meta charset=utf-8><title>usbench report</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}img{max-width:100%}"
             f"{leaderboard.TABLE_CSS}</style>",
             f"<h1>usbench benchmark</h1><p>Reference: {html.escape(str(result.reference))} "
             f"({result.n_reference} images, sha256 {result.reference_hash[:12]}…); "
             f"{result.n} images per generator at {result.image_size} px; seed {result.seed}.</p>",
             "<h2>Leaderboard</h2><p>↑ higher is better, ↓ lower; the best value of each subset is shaded and bold; "
             "brackets hold the 95% bootstrap interval. The table scrolls sideways when it is wider than the page.</p>",
             leaderboard.to_html(rows)]
    parts.append("<h2>Metrics with 95% intervals</h2>")
    for col in leaderboard.summary_columns(rows):
        if col in ("generator", "subset", "n_generated"):
            continue
        p = metric_plot(rows, col, fig_dir / f"metric_{col}.png")
        if p:
            parts.append(f'<img src="figures/{p.name}" alt="{html.escape(col)}" style="max-width:45%">')
    parts.append("<h2>Samples</h2>")
    if result.reference_set is not None:
        parts.append("<h3>reference</h3>")
        sample_grid(result.reference_set, fig_dir / "samples_reference.png", seed=result.seed)
        parts.append('<img src="figures/samples_reference.png" alt="reference samples">')
    for run in result.runs:
        name = f"samples_{run.run_id}.png"
        sample_grid(run.images, fig_dir / name, seed=result.seed)
        parts.append(f"<h3>{html.escape(run.generator)} <small>({html.escape(run.run_id)})</small></h3>"
                     f'<img src="figures/{name}" alt="{html.escape(run.generator)} samples">')
    parts.extend(human_section(rows, fig_dir))
    for run in result.runs:
        p = closest_pairs_figure(run, result.train_set, fig_dir / f"closest_{run.run_id}.png")
        if p:
            parts.append(f"<h3>Closest to a training image: {html.escape(run.generator)}</h3><p>Generated (left) "
                         f"and its nearest training image by pixel NCC (right).</p><img src=\"figures/{p.name}\">")
    reasons = leaderboard.skip_reasons(rows)
    if reasons:
        parts.append("<h2>Skipped metrics</h2><ul>" + "".join(
            f"<li><b>{html.escape(', '.join(metrics))}</b>: {html.escape(reason)}</li>" for reason, metrics in reasons.items())
            + "</ul>")
    path = out / "report.html"
    atomic_write_text(path, "\n".join(parts))
    from usbench import outputs

    outputs.record(out, [path, *sorted(p for p in fig_dir.glob("*.png"))])  # usbench's own, for the next run
    return path
