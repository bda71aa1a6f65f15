"""How FRD v1's d² grows with the blur of the phantom (why `phantom-blurred` is 1.5×, not 4×).

    PYTHONPATH=. python bench/blur_strength.py            # 150 images per setting, 256 px

Generates ``--n`` images (BUSI's label proportions) for each beam/pulse setting of the phantom,
extracts FRD v1's features, and prints d² and ln d² against the built-in reference set
(``phantom-busi``, 780 images, built into the usbench cache on first use). A setting "k×" widens
the beam by k and shortens the fractional bandwidth by k (a k× longer pulse).
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from usbench.datasets.phantom import builtin_reference
from usbench.generators import GenerationRequest, build_generator
from usbench.metrics.distribution import frd_d2
from usbench.metrics.frd_features import frd_v1_features
from usbench.phantom.params import SimParams

DEFAULT = SimParams()
SETTINGS = {  # name: (beam factor, pulse factor); None: the registered variant
    "default": (1.0, 1.0), "pulse 2×": (1.0, 2.0), "`phantom-blurred` (1.5×, its own config)": None,
    "1.75×": (1.75, 1.75), "2×": (2.0, 2.0), "2.5×": (2.5, 2.5), "4× beam, 3.6× pulse (before)": (4.0, 3.6),
}


def features(images, workers=2):
    with ProcessPoolExecutor(workers) as pool:
        return np.array(list(pool.map(frd_v1_features, images, chunksize=8)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=150)
    args = ap.parse_args()
    ref = builtin_reference(256, progress=True)
    R = features([ref.load_image(r, 256) for r in ref.records])
    n_b, n_m = round(args.n * 437 / 780), round(args.n * 210 / 780)
    labels = ["benign"] * n_b + ["malignant"] * n_m + ["normal"] * (args.n - n_b - n_m)
    reqs = [GenerationRequest(id=f"x{i}", label=l, seed=1000 + i, size=256, index=i, position=i) for i, l in enumerate(labels)]
    print(f"load {os.getloadavg()[0]:.1f}; {args.n} images per setting vs the 780-image phantom-busi reference\n")
    print("| setting | beam mm | fractional bandwidth | d² | ln d² |\n|---|---|---|---|---|")
    for name, factors in SETTINGS.items():
        if factors is None:
            gen = build_generator("phantom-blurred", {})
            cfg = {k: getattr(gen.params, k) for k in ("beam_width_mm", "fractional_bandwidth")}
        else:
            cfg = {"beam_width_mm": DEFAULT.beam_width_mm * factors[0],
                   "fractional_bandwidth": DEFAULT.fractional_bandwidth / factors[1]}
            gen = build_generator("phantom", cfg)
        d2 = frd_d2(features(list(gen.generate(reqs))), R)
        print(f"| {name} | {cfg['beam_width_mm']:.2f} | {cfg['fractional_bandwidth']:.2f} | {d2:.3g} | {np.log(d2):.2f} |", flush=True)


if __name__ == "__main__":
    main()
