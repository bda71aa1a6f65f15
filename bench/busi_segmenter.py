"""The segmenter's ceiling on real BUSI with intervals, from its card (no retraining).

    OMP_NUM_THREADS=1 usbench segmenter train --data ../shared/data/busi/Dataset_BUSI_with_GT \
        --size 128 --width 8 --epochs 12 --out /tmp/seg128
    PYTHONPATH=$PWD python bench/busi_segmenter.py /tmp/seg128 [--bootstrap 2000]

Mean Dice and HD95 per label and overall on the test split, each with a 95 % percentile
bootstrap interval over test images (usbench.metrics.bootstrap), plus the split the card records.
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--bootstrap", type=int, default=2000)
    args = ap.parse_args()

    from usbench.metrics.bootstrap import bootstrap
    from usbench.tasks.segmenter import Segmenter

    card = Segmenter.load(args.folder).card
    per_image = card["ceiling"]["per_image"]
    out = {"split": {k: card["split"].get(k) for k in ("scheme", "seed", "leak_free", "n_train", "n_val", "n_test")},
           "image_size": card["image_size"], "epochs": card["epochs"], "best_epoch": card["best_epoch"],
           "channels": card["config"]["channels"], "validation_dice": card["validation_dice"],
           "min_lesion_fraction": card["config"]["min_lesion_fraction"], "rows": {}}
    for label in ("all", "benign", "malignant", "lesion (benign+malignant)", "normal"):
        rows = [r for r in per_image if label == "all" or r["label"] == label
                or (label.startswith("lesion") and r["label"] in ("benign", "malignant"))]
        row = {"n": len(rows)}
        for key in ("dice", "hd95"):
            v = np.array([r[key] for r in rows], dtype=np.float64)
            lo, hi, _ = bootstrap(lambda a: float(a.mean()), [v], B=args.bootstrap, seed=0, level=0.95)
            row[key] = [round(float(v.mean()), 3), round(lo, 3), round(hi, 3)]
        if label in card["ceiling"]["presence"]["per_label"]:
            row["presence"] = round(card["ceiling"]["presence"]["per_label"][label], 3)
        out["rows"][label] = row
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
