"""Speed of the phantom simulator, and the fast engine against PyMUST side by side.

    PYTHONPATH=. python bench/phantom.py                      # speed table (fft at 256/512, PyMUST at 64,
                                                              # `data make-phantom --n 780` end to end ×3)
    PYTHONPATH=. python bench/phantom.py --variants docs/images/phantom_variants.png   # (the README grid: bench/phantom_realism.py)
    PYTHONPATH=. python bench/phantom.py --grid phantom_only.png                       # phantom-only grid

The fast engine is timed end to end (anatomy, lesion, scatterers, PSF, envelope, 8 bits) through
``usbench.phantom.simulate``, classes in BUSI proportions, one process (numpy/scipy FFTs with 2
workers). PyMUST renders the same phantom (same anatomy and lesion maps, same scatterer density)
with SIMUS (one plane wave) + delay-and-sum; because it takes minutes for a 256×256 field of view
it is run on a 64×64 image with the same pixel pitch (9.6 × 7.5 mm), and the fast engine is timed
on exactly that configuration too, so the ratio compares like with like.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from usbench.phantom import SimParams, build_phantom, preset_params, simulate
from usbench.phantom.imaging import render_bmode
from usbench.phantom.pymust_engine import pymust_available, render_pymust, scatterer_count

LABELS = ["normal"] * 133 + ["benign"] * 437 + ["malignant"] * 210


def images_per_second(size: int, n: int, params: SimParams | None = None) -> tuple[float, float]:
    """(images per wall-clock second, images per CPU second of this process)."""
    rng = np.random.default_rng(0)
    labels = rng.choice(LABELS, size=n)
    simulate("benign", 0, size, params=params)  # warm-up (imports, FFT plans)
    start, cpu = time.perf_counter(), time.process_time()
    for i, label in enumerate(labels):
        simulate(str(label), 1000 + i, size, params=params)
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu)


def reference_build_rate(size: int, n: int) -> tuple[float, int]:
    """(images per wall-clock second, processes) of the reference-set path: simulate_plan across the cores."""
    from usbench.datasets.phantom import _plan, default_workers, simulate_plan, split_like_busi

    plan = _plan(split_like_busi(n), 1)
    start = time.perf_counter()
    for _ in simulate_plan(plan, size, SimParams()):
        pass
    return n / (time.perf_counter() - start), default_workers(n)


def make_phantom_rate(n: int, repeat: int) -> list[float]:
    """Images per wall-clock second of ``usbench data make-phantom --n n`` end to end (a fresh
    process each time: start-up, simulation across the cores, PNG files written), ``repeat`` times."""
    import subprocess
    import sys
    import tempfile

    rates = []
    for r in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "usbench", "data", "make-phantom", "--out", f"{tmp}/set",
                            "--n", str(n), "--seed", str(r + 1)], check=True, capture_output=True)
            rates.append(n / (time.perf_counter() - start))
    return rates


def side_by_side(size: int = 64) -> dict[str, float]:
    base = SimParams()
    params = base.with_(depth_mm=base.depth_mm * size / 256, width_mm=base.width_mm * size / 256)
    phantom = build_phantom("benign", 3, (size, size), params)
    t0 = time.perf_counter()
    reps = 50
    for i in range(reps):
        render_bmode(phantom.echo_db, params, np.random.default_rng(i), phantom.atten)
    fast = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    render_pymust(phantom.echo_db, phantom.atten, params, np.random.default_rng(0))
    slow = time.perf_counter() - t0
    return {"size": size, "depth_mm": params.depth_mm, "width_mm": params.width_mm,
            "scatterers": scatterer_count(params), "fft_s": fast, "pymust_s": slow, "ratio": slow / fast}


def grid(path: str, columns: int = 4, size: int = 256) -> None:
    from PIL import Image

    rows = [np.concatenate([simulate(label, 100 + 7 * c + k, size)[0] for c in range(columns)], axis=1)
            for k, label in enumerate(["normal", "benign", "malignant"])]
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


def variants(path: str, size: int = 256) -> None:
    """One malignant and one benign case through each generator variant, and a mask-conditioned case."""
    from PIL import Image

    from usbench.generators import GenerationRequest, build_generator

    names = ["phantom", "phantom-blurred", "phantom-sparse", "phantom-flat"]
    rows = []
    for label, seed in (("benign", 106), ("malignant", 121)):
        row = [next(build_generator(n, {}).generate([GenerationRequest("x", label, seed, size)])) for n in names]
        rows.append(np.concatenate(row, axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n256", type=int, default=200)
    ap.add_argument("--n512", type=int, default=40)
    ap.add_argument("--pymust-size", type=int, default=64)
    ap.add_argument("--no-pymust", action="store_true")
    ap.add_argument("--make-phantom", type=int, default=780, metavar="N",
                    help="also time `usbench data make-phantom --n N` end to end (0: skip)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the end-to-end timing (the median is shown)")
    ap.add_argument("--grid")
    ap.add_argument("--variants")
    args = ap.parse_args()
    if args.grid or args.variants:
        if args.grid:
            grid(args.grid)
        if args.variants:
            variants(args.variants)
        return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    old = preset_params("v0.1")
    r256 = images_per_second(256, args.n256)
    r256_old = images_per_second(256, args.n256, old)
    r512 = images_per_second(512, args.n512)
    print("| engine | image | images/s (wall) | s/image (wall) | images per CPU-second |")
    print("|---|---|---|---|---|")
    for label, (wall, cpu) in (("256×256", r256), ("256×256, preset v0.1", r256_old), ("512×512", r512)):
        print(f"| fft | {label} | {wall:.1f} | {1 / wall:.4f} | {cpu:.1f} |")
    rate, procs = reference_build_rate(256, args.n256)
    print(f"| fft, reference build (simulate_plan, {procs} processes) | 256×256 | {rate:.1f} | {1 / rate:.4f} | — |")
    if args.make_phantom:
        rates = make_phantom_rate(args.make_phantom, args.repeat)
        print(f"| `usbench data make-phantom --n {args.make_phantom}` end to end, median of {args.repeat} "
              f"({', '.join(f'{x:.1f}' for x in rates)}) | 256×256 | {float(np.median(rates)):.1f} | "
              f"{1 / float(np.median(rates)):.4f} | — |")
    print(f"load {os.getloadavg()[0]:.1f}")
    if args.no_pymust or not pymust_available():
        print("PyMUST not installed: pip install pymust")
        return
    r = side_by_side(args.pymust_size)
    print(f"\nside by side, {r['size']}×{r['size']} image, {r['width_mm']:.1f}×{r['depth_mm']:.1f} mm, "
          f"{r['scatterers']} scatterers (20 per resolution cell):")
    print("| engine | s/image |")
    print("|---|---|")
    print(f"| fft (render only) | {r['fft_s']:.4f} |")
    print(f"| pymust (SIMUS + DAS) | {r['pymust_s']:.1f} |")
    print(f"ratio pymust/fft: {r['ratio']:.0f}×")


if __name__ == "__main__":
    main()
