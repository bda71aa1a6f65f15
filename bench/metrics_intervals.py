"""Issue 11's figures: FRD parity with frd-score, measured coverage of the intervals, their cost.

    PYTHONPATH=. python bench/metrics_intervals.py parity     # FRD vs frd-score 1.0.1 (needs frd-score, pyradiomics)
    PYTHONPATH=. python bench/metrics_intervals.py coverage   # method x scenario table (the test's simulation)
    PYTHONPATH=. python bench/metrics_intervals.py cost       # 1000 resamples at N = 780, d = 2048

Prints markdown for bench/RESULTS.md (section Metrics). Run with `nice`; say the load (`uptime`).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))


def parity():
    import frd_score.frd as frd

    from _metrics_fixtures import degrade, make_images, write_set
    from usbench.imageset import read_gray
    from usbench.metrics.distribution import frd_d2
    from usbench.metrics.frd_features import FrdV1Extractor

    frd._ensure_radiomics()
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    frd.setVerbosity(60)
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ref = write_set(root / "ref", make_images(30, seed=1, size=64))
        sets = {"faithful (same texture model)": write_set(root / "same", make_images(30, seed=2, size=64)),
                "blurred (σ 1.2)": write_set(root / "blur", [degrade(im, "blur", 1.2, rng) for im in make_images(30, seed=2, size=64)])}
        feats = lambda s: FrdV1Extractor(workers=1).extract((read_gray(r.file) for r in s.records), len(s))  # noqa: E731
        F_ref = feats(ref)
        print("| set (30 vs 30, 64 px) | frd-score 1.0.1 | usbench `frd` | relative difference |\n|---|---|---|---|")
        for name, s in sets.items():
            theirs = float(frd.compute_frd([str(ref.root), str(s.root)], frd_version="v1", num_workers=1))
            ours = float(np.log(frd_d2(feats(s), F_ref)))
            print(f"| {name} | {theirs:.6f} | {ours:.6f} | {abs(ours - theirs) / abs(theirs):.1e} |")


def coverage():
    import test_metrics_coverage as T

    table = {name: T.simulate(name) for name in T.SCENARIOS}
    print(f"d = {T.D}, N = {T.N} per set, {T.REPS} repetitions, B = {T.B}; nominal 0.95\n")
    print("| method | " + " | ".join(T.SCENARIOS) + " |\n|---|" + "---|" * len(T.SCENARIOS))
    for method in table[next(iter(table))]:
        print(f"| {method} | " + " | ".join(f"{table[s][method]:.3f}" for s in table) + " |")


def _inception_like(rng, n, d=2048, rank=300, shift=0.0):
    basis = np.random.default_rng(123).normal(size=(rank, d)) / np.sqrt(rank)
    return np.abs(rng.normal(size=(n, rank)) @ basis + 0.3 * rng.normal(size=(n, d)) + shift)


def cost_table(n=780, d=2048, B=1000):
    from usbench.metrics.frechet import bootstrap_frechet, fd_infinity, fd_infinity_interval, frechet_distance_from_features
    from usbench.metrics.kid import kernel_grams, kid_bootstrap
    from usbench.metrics.prdc import prdc_subsampling

    rng = np.random.default_rng(0)
    X1, X2 = _inception_like(rng, n, d), _inception_like(rng, n, d, shift=0.05)
    rows = []
    t = time.perf_counter(); v = frechet_distance_from_features(X1, X2); lo, hi, _ = bootstrap_frechet(X1, X2, B=B, seed=0, estimate=v)
    rows.append(("FID basic bootstrap (Gram route)", B, time.perf_counter() - t))
    t = time.perf_counter(); g = kernel_grams(X1, X2); kid_bootstrap(*g, B=B, seed=0)
    rows.append(("KID percentile bootstrap", B, time.perf_counter() - t))
    t = time.perf_counter(); prdc_subsampling(X2, X1, 5, B=B, seed=0)
    rows.append(("PRDC 90% subsampling", B, time.perf_counter() - t))
    sizes = sorted(set(np.linspace(n // 5, n, 15).astype(int).tolist()))
    fd_inf = fd_infinity(X1, X2, sizes=sizes)[0]
    for b_inf in (200, 1000):  # 200: the metric's cap for d > 64 (FdInfConfig.max_resamples_large_d)
        t = time.perf_counter(); fd_infinity_interval(X1, X2, sizes, B=b_inf, seed=0, estimate=fd_inf)
        rows.append(("FD∞ half-sampling", b_inf, time.perf_counter() - t))
    print(f"N = {n} per set, d = {d}\n\n| interval | resamples | seconds |\n|---|---|---|")
    for name, b, s in rows:
        print(f"| {name} | {b} | {s:.1f} |")


if __name__ == "__main__":
    import os

    print(f"load: {os.getloadavg()}", flush=True)
    {"parity": parity, "coverage": coverage, "cost": cost_table}[sys.argv[1]]()
