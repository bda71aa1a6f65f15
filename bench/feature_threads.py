"""Radiomic / FRD v1 feature extraction with 2 worker processes, BLAS threads per worker 1 vs the default.

    python bench/feature_threads.py            # 120 phantom images at 256 px

Run the two settings in separate processes (OpenBLAS's thread count is fixed per process by
``OPENBLAS_NUM_THREADS`` before numpy loads) and prints wall ms/image of each extractor, so the
effect of threads on top of a process pool is measured side by side on this machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

CHILD = r"""
import time, numpy as np
from threadpoolctl import threadpool_limits
import usbench.phantom as P
import usbench.common as C
from usbench.metrics import frd_features as F, radiomics as R
if not ONE:  # undo usbench's own per-worker limit to show what it avoids
    C.one_thread_per_worker = lambda: None
imgs = [P.simulate(["benign", "malignant", "normal"][s % 3], s)[0] for s in range(N)]
for rep in range(2):
    t = time.perf_counter(); F.FrdV1Extractor(workers=2).extract(iter(imgs), len(imgs)); a = time.perf_counter() - t
    t = time.perf_counter(); R.RadiomicsExtractor(workers=2).extract(iter(imgs), len(imgs)); b = time.perf_counter() - t
print(f"{a / N * 1e3:.1f} {b / N * 1e3:.1f}")
"""


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 120
    for one in (False, True):
        code = f"ONE = {one}; N = {n}\n" + CHILD
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env=dict(os.environ)).stdout.split()
        label = "one BLAS thread per worker" if one else "BLAS default threads per worker"
        print(f"{label:34s} FRD v1 {out[0]} ms/image, radiomics {out[1]} ms/image (wall, 2 workers, {n} images)")


if __name__ == "__main__":
    main()
