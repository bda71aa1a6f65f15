"""Pairwise MS-SSIM: ours (usbench.metrics.diversity.pairwise_msssim) against torchmetrics, side by side.

Phantom images at 256 px (the built-in benchmark's), ``--pairs`` random pairs. Ours runs with 1
and with 2 worker threads; torchmetrics (float64, the parity reference) runs on the first
``--tm-pairs`` of them, one pair per call, with 1 torch thread and with the default number.
Times are CPU seconds of this process (user + system, all threads) and wall seconds; on a shared
machine compare the CPU columns and the ratios.

    python bench/msssim.py                      # 120 images, 200 pairs
    python bench/msssim.py --images 60 --pairs 100 --tm-pairs 10
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np


def clock() -> tuple[float, float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime, r.ru_stime


def timed(fn):
    w0, u0, s0 = clock()
    out = fn()
    w1, u1, s1 = clock()
    return out, (w1 - w0, u1 - u0, s1 - s0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=120)
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--tm-pairs", type=int, default=20, help="pairs given to torchmetrics (slow)")
    args = ap.parse_args()

    import torch
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm

    from usbench.metrics.diversity import pairwise_msssim, random_pairs
    from usbench.phantom.simulate import simulate

    labels = ["normal", "benign", "malignant"]
    imgs = np.stack([simulate(labels[k % 3], k, 256)[0] for k in range(args.images)])
    pairs = random_pairs(len(imgs), args.pairs, seed=0)
    print(f"{len(imgs)} phantom images of 256 px, {len(pairs)} pairs; load average {os.getloadavg()[0]:.1f}")
    rows = []
    ours = {}
    for workers in (1, 2):
        ours[workers], t = timed(lambda: pairwise_msssim(imgs, pairs, workers=workers))
        rows.append((f"ours, {workers} worker thread{'s' if workers > 1 else ''}", len(pairs), *t))
    x = torch.from_numpy(imgs.astype(np.float64))[:, None]
    sub = pairs[: args.tm_pairs]
    default_threads = torch.get_num_threads()
    ref = None
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        vals, t = timed(lambda: np.array([float(tm(x[i:i + 1], x[j:j + 1], data_range=255.0)) for i, j in sub]))
        ref = vals if ref is None else ref
        rows.append((f"torchmetrics float64, {threads} torch thread{'s' if threads > 1 else ''}", len(sub), *t))
    torch.set_num_threads(default_threads)
    print("| implementation | pairs | wall s / 100 pairs | user s / 100 pairs | system s / 100 pairs |")
    print("|---|---:|---:|---:|---:|")
    for name, n, w, u, s in rows:
        print(f"| {name} | {n} | {100 * w / n:.2f} | {100 * u / n:.2f} | {100 * s / n:.2f} |")
    rel = np.max(np.abs(ours[1][: len(sub)] - ref) / np.abs(ref))
    print(f"\nmax relative difference ours vs torchmetrics (float64) over {len(sub)} pairs: {rel:.1e}; "
          f"1 vs 2 worker threads identical: {np.array_equal(ours[1], ours[2])}")


if __name__ == "__main__":
    main()
