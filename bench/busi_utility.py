"""The utility experiment on real BUSI: benign vs malignant, real only and real + phantom.

    PYTHONPATH=$PWD python bench/busi_utility.py --busi ../shared/data/busi/Dataset_BUSI_with_GT \
        --out /tmp/busi-utility [--n-synthetic 300] [--seeds 3] [--epochs 20] [--phantom-size 128]

1. The real benign/malignant images are split exactly as ``usbench utility`` splits them
   (``seeded``, seed 0: duplicate groups on one side).
2. The phantom renders ``--n-synthetic`` benign/malignant images in BUSI's proportions, each
   conditioned on the lesion mask of a *training-split* image: the test lesions' shapes must not
   reach the training set (``usbench run`` conditions on the *test* masks, which is right for mask
   adherence and wrong for augmentation).
3. ``usbench.tasks.utility.run_utility`` trains the three arms per seed and writes utility.json.

Prints the summary line per arm and the wall/CPU time with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--busi", default="../shared/data/busi/Dataset_BUSI_with_GT")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n-synthetic", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--phantom-size", type=int, default=128)
    args = ap.parse_args()

    from usbench.datasets import load
    from usbench.datasets.splits import split
    from usbench.generators import build_generator
    from usbench.generators.sharding import generate_sharded
    from usbench.imageset import ImageSet
    from usbench.generators.plan import make_requests
    from usbench.tasks.utility import UtilityConfig, run_utility, write_result

    t0, c0, load_avg = time.perf_counter(), time.process_time(), os.getloadavg()
    out = Path(args.out)
    busi = load(args.busi)
    two = busi.subset([r for r in busi.records if r.label in ("benign", "malignant")])
    cfg = UtilityConfig(seeds=args.seeds, epochs=args.epochs, n_synthetic=0)
    sp = split(two, cfg.split, test_fraction=cfg.test_fraction, seed=cfg.split_seed)
    phantom_dir = out / "phantom"
    if (phantom_dir / "manifest.csv").is_file():
        synthetic = ImageSet.read(phantom_dir)
    else:
        requests = make_requests(two, args.n_synthetic, seed=1, image_size=args.phantom_size, conditioning=sp.train)
        synthetic = generate_sharded(build_generator("phantom", {}), requests, phantom_dir, source="phantom", progress=True)
    t_gen = time.perf_counter() - t0
    result = run_utility(busi, synthetic, cfg, progress=lambda m: print(m, flush=True))
    result["bench"] = {"phantom_conditioned_on": "training-split masks", "phantom_size": args.phantom_size,
                       "seconds_wall": round(time.perf_counter() - t0, 1), "seconds_generate": round(t_gen, 1),
                       "cpu_seconds_main_process": round(time.process_time() - c0, 1),
                       "loadavg_at_start": [round(x, 2) for x in load_avg]}
    write_result(result, out)
    s = result["summary"]
    print(json.dumps({"split": {k: result["split"][k] for k in ("scheme", "leak_free", "n_train", "n_test")},
                      "test_counts": result["split"]["test_counts"], "model": result["model"]["description"],
                      **{k: s[k] for k in s if k.startswith(("auc", "diff"))}, "bench": result["bench"]}, indent=1))


if __name__ == "__main__":
    main()
