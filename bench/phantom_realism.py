"""How much the phantom looks like real BUSI: interpretable statistics with BUSI's own spread, and FRD's d².

    PYTHONPATH=. python bench/phantom_realism.py                       # v0.1 (before) and busi (default), 300 images each
    PYTHONPATH=. python bench/phantom_realism.py --candidates busi phantom-flat phantom-blurred phantom-sparse
    PYTHONPATH=. python bench/phantom_realism.py --figure docs/images/phantom_realism.png --readme-grid docs/images/phantom_grid.png
    PYTHONPATH=. python bench/phantom_realism.py --mask-stats          # BUSI's lesion-mask statistics (lesions.BUSI_MASKS)

Every image goes through the benchmark's protocol (resized to 256×256, bicubic; masks nearest).
A candidate is a phantom preset (``busi``, ``v0.1``, a probe preset) or a phantom generator
(``phantom-flat``…); each simulates ``--n`` images in BUSI's class proportions with the seeds of the
built-in reference set. The radiomics distance is d² of usbench's ``frd`` metric (features of
usbench.metrics.radiomics, z-scored on the reference, Fréchet distance; FRD = ln d²); its floor is
BUSI's odd ids against its even ids. Statistics and the interpretation of "within" are in
:mod:`usbench.phantom.realism`. Writes ``--json`` (default bench/phantom_realism.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from usbench.datasets.phantom import _plan, simulate_plan, split_like_busi
from usbench.datasets.readers import busi_number, read_busi
from usbench.phantom import preset_params, realism

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUSI = ROOT.parent / "shared" / "data" / "busi" / "Dataset_BUSI_with_GT"


def candidate_params(name: str):
    if name.startswith("phantom"):
        from usbench.generators import build_generator

        return build_generator(name, {}).params
    return preset_params(name)


def simulate_candidate(name: str, n: int, seed: int = 0):
    params = candidate_params(name)
    plan = _plan(split_like_busi(n), seed)
    return [(im, m if m.any() else None, label) for (label, _, _), (im, m) in zip(plan, simulate_plan(plan, 256, params))]


def metric_commit() -> str:
    """The last commit that touched the FRD metric's code (features, normalisation, Fréchet distance)."""
    files = ["usbench/metrics/radiomics.py", "usbench/metrics/distribution.py", "usbench/metrics/frechet.py"]
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%h %ad %s", "--date=short", "--", *files], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
        return out or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def radiomics_features(images, cache: Path | None):
    from usbench.metrics.radiomics import RadiomicsExtractor

    if cache is not None and cache.is_file():
        return np.load(cache)
    feats = RadiomicsExtractor().extract(iter(images), len(images))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, feats)
    return feats


def busi_stats(busi, pairs):
    """BUSI's statistics, cached by the set's content hash and the realism module's source."""
    import hashlib
    import pickle

    from usbench.weights import usbench_cache

    code = hashlib.sha256(Path(realism.__file__).read_bytes()).hexdigest()[:8]
    cache = usbench_cache() / "bench" / f"busi-realism-{busi.content_hash()[:12]}-{code}.pkl"
    if cache.is_file():
        return pickle.loads(cache.read_bytes())
    stats = realism.set_stats("busi", pairs)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(stats))
    return stats


def d2(gen: np.ndarray, ref: np.ndarray) -> float:
    from usbench.metrics.distribution import frd_normalize
    from usbench.metrics.frechet import frechet_distance_from_features

    g, r, _ = frd_normalize(gen, ref)
    return float(frechet_distance_from_features(g, r))


def mask_stats(pairs) -> None:
    for label in ("benign", "malignant"):
        rows = [(m.mean(), *np.nonzero(m)) for _, m, l in pairs if l == label and m is not None and m.any()]
        area = np.log([a for a, _, _ in rows])
        aspect = np.log([(np.ptp(r) + 1) / (np.ptp(c) + 1) for _, r, c in rows])
        depth = np.array([r.mean() / 256 for _, r, _ in rows])
        lateral = np.array([c.mean() / 256 - 0.5 for _, _, c in rows])
        print(f"{label}: n={len(rows)} log_area=({area.mean():.2f}, {area.std():.2f}) "
              f"log_aspect=({aspect.mean():.2f}, {aspect.std():.2f}) depth=({depth.mean():.3f}, {depth.std():.3f}) "
              f"lateral_sd={lateral.std():.3f} taller_than_wide={np.mean(aspect > 0):.2f}")


def table(real, cands: dict) -> list[str]:
    names = list(cands)
    lines = ["| statistic | label | BUSI p10 / median / p90 | " + " | ".join(f"{n} median" for n in names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    per_cand = {n: realism.compare(real, s) for n, s in cands.items()}
    for i, row in enumerate(per_cand[names[0]]):
        cells = []
        for n in names:
            r = per_cand[n][i]
            cells.append(f"{r.phantom[1]:.3g}{'' if r.within else ' ✗'}")
        lines.append(f"| {row.statistic} | {row.label} | {row.real[0]:.3g} / {row.real[1]:.3g} / {row.real[2]:.3g} | "
                     + " | ".join(cells) + " |")
    lines.append("| depth profile: bins within ±1 s.d. | all | 1 | "
                 + " | ".join(f"{realism.profile_within(real, s):.2f}" for s in cands.values()) + " |")
    lines.append("| pooled histogram W1 to BUSI (gray levels) | all | — | "
                 + " | ".join(f"{realism.histogram_w1(real, s):.1f}" for s in cands.values()) + " |")
    return lines


def figure(path: str, real_pairs, real, cand_pairs: dict, cand_stats: dict) -> None:
    """Per label: two BUSI and two phantom images (last candidate), and the depth profiles overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ("normal", "benign", "malignant")
    presets = [n for n in cand_pairs if not n.startswith("phantom")]  # the variants would crowd the curves
    cand_pairs = {n: cand_pairs[n] for n in presets}
    cand_stats = {n: cand_stats[n] for n in presets}
    name = presets[-1]
    fig, axes = plt.subplots(3, 6, figsize=(15, 7.6), gridspec_kw={"width_ratios": [1, 1, 1, 1, 1.5, 1.5]})
    for r, label in enumerate(labels):
        busi = [im for im, _, l in real_pairs if l == label]
        ph = [im for im, _, l in cand_pairs[name] if l == label]
        for c, im in enumerate([busi[3], busi[11], ph[0], ph[1]]):
            ax = axes[r, c]
            ax.imshow(im, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title("BUSI" if c < 2 else f"phantom ({name})", fontsize=9)
        axes[r, 0].set_ylabel(label)
        depth = (np.arange(realism.PROFILE_BINS) + 0.5) / realism.PROFILE_BINS
        ax = axes[r, 4]
        prof = real.profiles[real.labels == label]
        ax.fill_between(depth, prof.mean(0) - prof.std(0), prof.mean(0) + prof.std(0), color="0.8", label="BUSI ±1 s.d.")
        ax.plot(depth, prof.mean(0), "k", label="BUSI")
        for n, s in cand_stats.items():
            ax.plot(depth, s.profiles[s.labels == label].mean(0), label=n)
        ax.set_xlabel("depth (fraction)"), ax.set_ylabel("mean gray level"), ax.set_ylim(0, 255)
        ax = axes[r, 5]
        grays = np.arange(256)
        hist = lambda pairs: realism.pooled_histogram(im for im, _, l in pairs if l == label)
        ax.plot(grays, hist(real_pairs), "k", label="BUSI")
        for n in cand_pairs:
            ax.plot(grays, hist(cand_pairs[n]), label=n)
        ax.set_xlabel("gray level"), ax.set_ylabel("fraction of pixels")
        if r == 0:
            axes[r, 4].set_title("mean intensity vs depth", fontsize=9)
            axes[r, 5].set_title("gray-level histogram", fontsize=9)
            axes[r, 5].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def readme_grid(path: str, real_pairs, cand_pairs, columns: int = 3, thumb: int = 112) -> None:
    """Rows normal/benign/malignant: BUSI thumbnails on the left, phantom on the right (a small PNG)."""
    from PIL import Image

    gap = np.full((thumb, 8), 255, np.uint8)
    rows = []
    for label in ("normal", "benign", "malignant"):
        busi = [im for im, _, l in real_pairs if l == label][5::37][:columns]  # spaced: BUSI's neighbours are often near-duplicates
        ph = [im for im, _, l in cand_pairs if l == label][:columns]
        small = lambda ims: [np.asarray(Image.fromarray(im).resize((thumb, thumb), Image.LANCZOS)) for im in ims]
        rows.append(np.concatenate(small(busi) + [gap] + small(ph), axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(path, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--busi", type=Path, default=Path(os.environ.get("USBENCH_BUSI", DEFAULT_BUSI)))
    ap.add_argument("--candidates", nargs="+", default=["v0.1", "busi"])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--no-frd", action="store_true", help="skip the radiomics distance (minutes of CPU)")
    ap.add_argument("--figure")
    ap.add_argument("--readme-grid")
    ap.add_argument("--mask-stats", action="store_true")
    ap.add_argument("--json", default=str(ROOT / "bench" / "phantom_realism.json"))
    args = ap.parse_args()
    if not (args.busi / "benign").is_dir():
        print(f"error: no BUSI at {args.busi}", "(give --busi DIR: the Dataset_BUSI_with_GT folder)", file=sys.stderr)
        raise SystemExit(2)
    t0 = time.perf_counter()
    busi = read_busi(args.busi)
    real_pairs = realism.load_pairs(busi)
    if args.mask_stats:
        mask_stats(real_pairs)
        return
    print(f"load {os.getloadavg()[0]:.1f}; BUSI: {len(real_pairs)} images; FRD metric code at commit {metric_commit()}",
          file=sys.stderr)
    real = busi_stats(busi, real_pairs)
    cand_pairs = {n: simulate_candidate(n, args.n) for n in args.candidates}
    cand_stats = {n: realism.set_stats(n, p, real.histogram) for n, p in cand_pairs.items()}
    result = {"n": args.n, "metric_commit": metric_commit(), "load": os.getloadavg()[0], "d2": {}}
    lines = table(real, cand_stats)
    if not args.no_frd:
        from usbench.weights import usbench_cache

        cache = usbench_cache() / "bench" / f"busi-radiomics-{busi.content_hash()[:12]}.npy"
        ref = radiomics_features([im for im, _, _ in real_pairs], cache)
        ids = [busi_number(rec.id) or 0 for rec in busi]
        odd = np.array([i % 2 == 1 for i in ids])
        result["d2"]["BUSI odd vs BUSI even (floor)"] = d2(ref[odd], ref[~odd])
        for n, pairs in cand_pairs.items():
            result["d2"][n] = d2(radiomics_features([im for im, _, _ in pairs], None), ref)
        lines += ["", "| pair | d² | FRD = ln d² |", "|---|---|---|"]
        lines += [f"| {k} vs BUSI | {v:.4g} | {np.log(max(v, 1e-12)):.2f} |" if "floor" not in k else
                  f"| {k} | {v:.4g} | {np.log(max(v, 1e-12)):.2f} |" for k, v in result["d2"].items()]
    result["rows"] = {n: [vars(r) | {"within": r.within} for r in realism.compare(real, s)] for n, s in cand_stats.items()}
    result["profile_within"] = {n: realism.profile_within(real, s) for n, s in cand_stats.items()}
    result["histogram_w1"] = {n: realism.histogram_w1(real, s) for n, s in cand_stats.items()}
    print("\n".join(lines))
    Path(args.json).write_text(json.dumps(result, indent=1))
    if args.figure:
        figure(args.figure, real_pairs, real, cand_pairs, cand_stats)
    if args.readme_grid:
        readme_grid(args.readme_grid, real_pairs, cand_pairs[args.candidates[-1]])
    print(f"{time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
