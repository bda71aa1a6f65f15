"""How duplicate detection scales on real BUSI: cold (decode every image), from the SQLite cache,
and from the in-process memo; and the splits built on it. Side by side in one process.

    PYTHONPATH=$PWD python bench/busi_duplicates.py [../shared/data/busi/Dataset_BUSI_with_GT]

Prints one JSON object (seconds, counts and the load average at the start).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main(root: str) -> dict:
    os.environ["USBENCH_CACHE"] = tempfile.mkdtemp(prefix="usbench-dup-bench-")  # a cold disk cache
    from usbench.datasets import duplicates, load
    from usbench.datasets.splits import split

    load_avg = os.getloadavg()
    busi = load(Path(root))
    out: dict = {"n_images": len(busi), "loadavg_at_start": [round(x, 2) for x in load_avg]}

    def timed(name, fn):
        t0 = time.perf_counter()
        value = fn()
        out[f"seconds_{name}"] = round(time.perf_counter() - t0, 3)
        return value

    groups = timed("cold", lambda: duplicates.duplicate_groups(busi))
    duplicates._memo.clear()
    timed("sqlite_cache", lambda: duplicates.duplicate_groups(busi))
    timed("memo", lambda: duplicates.duplicate_groups(busi))
    thumbs, _ = duplicates.thumbnails(busi)
    timed("correlation_only", lambda: (thumbs @ thumbs.T >= duplicates.NEAR_THRESHOLD).sum())
    for scheme in ("seeded", "paper", "paper-dedup"):
        sp = timed(f"split_{scheme}", lambda: split(busi, scheme, groups=groups))
        out[f"leaks_{scheme}"] = len(sp.leaks)
        out[f"removed_{scheme}"] = len(sp.removed)
    out["exact_groups"] = sum(g.exact for g in groups)
    out["near_groups"] = sum(not g.exact for g in groups)
    out["images_in_groups"] = sum(len(g.ids) for g in groups)
    out["cross_label_groups"] = sum(g.cross_label for g in groups)
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/busi/Dataset_BUSI_with_GT"), indent=1))
