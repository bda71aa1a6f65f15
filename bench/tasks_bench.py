"""Timings of the task metrics on CPU (not a test): segmenter training at 256 px, segmenting,
the utility experiment, DeLong.

    PYTHONPATH=. python bench/tasks_bench.py [--n 300] [--size 256] [--epochs 3] [--width 8] [--threads 2]

Data: the built-in phantom set when ``usbench.datasets.phantom`` is present, otherwise the toy
speckle renderer of the tests (same sizes, same counts).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def toy_or_phantom(out: Path, n: int, size: int, seed: int):
    try:
        from usbench.datasets.phantom import builtin_reference  # noqa: F401

        from usbench.datasets import load

        return load("phantom-busi", image_size=size, seed=seed).take(n, seed=seed), "phantom-busi"
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from _tasks_fixtures import make_toy_set

        counts = {"normal": n // 6, "benign": n // 2, "malignant": n - n // 6 - n // 2}
        return make_toy_set(out, counts, size=size, seed=seed), "toy speckle renderer (tests/_tasks_fixtures.py)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--width", type=int, default=8)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from usbench.tasks.adherence import segment_imageset
    from usbench.tasks.delong import delong_test
    from usbench.tasks.segmenter import SegmenterConfig, train_segmenter
    from usbench.tasks.utility import UtilityConfig, run_utility

    tmp = Path(tempfile.mkdtemp())
    data, kind = toy_or_phantom(tmp / "data", args.n, args.size, 0)
    print(f"data: {kind}, {len(data)} images at {args.size} px, U-Net width {args.width}, torch threads {args.threads}")

    epoch_times = []
    last = [time.perf_counter()]

    def tick(epoch, total, val):
        now = time.perf_counter()
        epoch_times.append(now - last[0])
        last[0] = now
        print(f"  epoch {epoch}/{total}: {epoch_times[-1]:.1f} s, val Dice {val:.3f}")

    t0 = time.perf_counter()
    last[0] = t0
    seg = train_segmenter(data, tmp / "seg", SegmenterConfig(image_size=args.size, epochs=args.epochs,
                                                                       channels=tuple(args.width * k for k in (1, 2, 4, 8))), progress=tick)
    total = time.perf_counter() - t0
    print(f"segmenter: {args.epochs} epochs in {total:.1f} s ({np.median(epoch_times):.1f} s/epoch incl. validation); "
          f"ceiling Dice {seg.card['ceiling']['dice']:.3f}, HD95 {seg.card['ceiling']['hd95']:.1f} px "
          f"on {seg.card['ceiling']['n']} test images")
    t0 = time.perf_counter()
    segment_imageset(seg, data)
    dt = time.perf_counter() - t0
    print(f"segmenting: {len(data)} images in {dt:.1f} s ({1000 * dt / len(data):.0f} ms/image)")

    rng = np.random.default_rng(0)
    y = np.r_[np.ones(500, int), np.zeros(500, int)]
    a, b = y + rng.normal(size=1000), y + rng.normal(size=1000)
    t0 = time.perf_counter()
    for _ in range(100):
        delong_test(y, a, b)
    print(f"DeLong test, 1000 cases: {1000 * (time.perf_counter() - t0) / 100:.2f} ms")

    real = data.subset([r for r in data.records if r.label in ("benign", "malignant")])
    synth, _ = toy_or_phantom(tmp / "synth", args.n, args.size, 1)  # another seed stands in for a generator
    synth = synth.subset([r for r in synth.records if r.label in ("benign", "malignant")])
    t0 = time.perf_counter()
    res = run_utility(real, synth, UtilityConfig(seeds=1, image_size=64, epochs=10))
    print(f"utility (small-cnn, 64 px, 1 seed x 3 arms, 10 epochs, {len(real)} real + {len(synth)} synthetic): "
          f"{time.perf_counter() - t0:.1f} s; AUC real {res['summary']['auc_real']['auc']:.3f}")


if __name__ == "__main__":
    main()
