"""What is in a dataset: counts, masks per image, sizes, duplicates, and the leaks of its splits."""

from __future__ import annotations

from collections import Counter
from typing import Any

from PIL import Image

from usbench.datasets.duplicates import duplicate_groups
from usbench.datasets.splits import split
from usbench.errors import UsbenchError
from usbench.imageset import ImageSet


def inspect(imageset: ImageSet, seed: int = 0) -> dict[str, Any]:
    imageset.validate()  # decode every image and mask once: bad files fail here, with their name
    sizes = []
    for rec in imageset.records:
        with Image.open(rec.file) as im:
            sizes.append(im.size)
    widths = [w for w, _ in sizes]
    heights = [h for _, h in sizes]
    masks_per_image = Counter(
        (1 if r.mask_file else 0) + len(imageset.extra_masks.get(r.id, ())) for r in imageset.records
    )
    groups = duplicate_groups(imageset)
    report: dict[str, Any] = {
        "name": imageset.name,
        "root": str(imageset.root),
        "n_images": len(imageset),
        "counts": imageset.counts(),
        "masks_per_image": {str(k): v for k, v in sorted(masks_per_image.items())},
        "width": {"min": min(widths), "median": sorted(widths)[len(widths) // 2], "max": max(widths)},
        "height": {"min": min(heights), "median": sorted(heights)[len(heights) // 2], "max": max(heights)},
        "content_hash": imageset.content_hash(),
        "duplicates": {
            "exact_groups": [g.ids for g in groups if g.exact],
            "near_groups": [g.ids for g in groups if not g.exact],
            "cross_label_groups": [dict(zip(g.ids, g.labels)) for g in groups if g.cross_label],
        },
        "split_leaks": {},
    }
    report["split_removed"] = {}
    schemes = ["seeded"] + (["paper", "paper-dedup"] if imageset.name == "busi" else [])
    for scheme in schemes:
        try:
            s = split(imageset, scheme=scheme, seed=seed, groups=groups)
        except UsbenchError as err:  # a set too small to split is still worth inspecting
            report["split_leaks"][scheme] = f"cannot split: {err}"
            continue
        report["split_leaks"][scheme] = s.leaks
        if s.removed:
            report["split_removed"][scheme] = s.removed
    return report


def format_report(r: dict[str, Any]) -> str:
    lines = [
        f"{r['name']}: {r['n_images']} images in {r['root']}",
        "  labels: " + ", ".join(f"{k or '(none)'} {v}" for k, v in r["counts"].items()),
        "  masks per image: " + ", ".join(f"{k}: {v}" for k, v in r["masks_per_image"].items()),
        f"  width {r['width']['min']}–{r['width']['max']} (median {r['width']['median']}), "
        f"height {r['height']['min']}–{r['height']['max']} (median {r['height']['median']})",
        f"  content sha256 {r['content_hash']}",
    ]
    d = r["duplicates"]
    lines.append(f"  duplicates: {len(d['exact_groups'])} exact groups, {len(d['near_groups'])} near-duplicate groups, "
                 f"{len(d['cross_label_groups'])} filed under two labels")
    for g in (d["exact_groups"] + d["near_groups"])[:10]:
        lines.append("    " + ", ".join(g))
    for scheme, leaks in r["split_leaks"].items():
        if isinstance(leaks, str):
            lines.append(f"  split {scheme}: {leaks}")
        else:
            lines.append(f"  split {scheme}: {len(leaks)} duplicate group(s) cross train/test" + (" (a leak)" if leaks else ""))
            for g in leaks[:10]:
                lines.append("    " + ", ".join(g))
            removed = r.get("split_removed", {}).get(scheme)
            if removed:
                lines.append(f"    {len(removed)} training image(s) removed because they duplicate test images, e.g. {', '.join(removed[:4])}")
    return "\n".join(lines)
