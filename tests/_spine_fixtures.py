"""Small datasets in the layouts real datasets are distributed in, made by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def _image(rng, h, w, lesion: bool):
    img = rng.normal(110, 25, (h, w))
    mask = np.zeros((h, w), bool)
    if lesion:
        yy, xx = np.mgrid[:h, :w]
        cy, cx = rng.integers(h // 4, 3 * h // 4), rng.integers(w // 4, 3 * w // 4)
        mask = ((yy - cy) / (h / 6)) ** 2 + ((xx - cx) / (w / 5)) ** 2 <= 1
        img[mask] -= 60
    return np.clip(img, 0, 255).astype(np.uint8), mask


def make_busi(root: Path, counts=(("benign", 10), ("malignant", 6), ("normal", 5)), seed=0, rgb=True,
              duplicate=True, extra_mask=True) -> Path:
    """BUSI as distributed: RGB-stored grayscale, ``name (i).png`` + ``name (i)_mask.png`` (+ ``_mask_1``)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    for label, n in counts:
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(1, n + 1):
            h, w = int(rng.integers(48, 80)), int(rng.integers(60, 100))
            img, mask = _image(rng, h, w, label != "normal")
            Image.fromarray(np.stack([img] * 3, -1) if rgb else img).save(root / label / f"{label} ({i}).png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / label / f"{label} ({i})_mask.png")
            if extra_mask and label != "normal" and i == 2:
                extra = np.zeros_like(mask)
                extra[:5, :5] = True
                Image.fromarray(extra.astype(np.uint8) * 255).save(root / label / f"{label} ({i})_mask_1.png")
    if duplicate:  # BUSI files some images twice, even under two labels: copy benign (1) to malignant
        n_mal = dict(counts).get("malignant", 0)
        src = root / "benign" / "benign (1).png"
        Image.open(src).save(root / "malignant" / f"malignant ({n_mal + 1}).png")
        Image.open(root / "benign" / "benign (1)_mask.png").save(root / "malignant" / f"malignant ({n_mal + 1})_mask.png")
    return root


def make_busbra(root: Path, n_patients=8, seed=0) -> Path:
    """BUS-BRA: Images/bus_0001-l.png, Masks/mask_0001-l.png, bus_data.csv (ID, Case, Pathology)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "Images").mkdir(parents=True)
    (root / "Masks").mkdir()
    rows = ["ID,Case,Histology,Pathology,BIRADS,Device"]
    for p in range(1, n_patients + 1):
        path = "malignant" if p % 3 == 0 else "benign"
        for side in ("l", "r"):
            img, mask = _image(rng, 64, 64, True)
            Image.fromarray(img).save(root / "Images" / f"bus_{p:04d}-{side}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / "Masks" / f"mask_{p:04d}-{side}.png")
            rows.append(f"bus_{p:04d}-{side},{p},x,{path},4,dev")
    (root / "bus_data.csv").write_text("\n".join(rows) + "\n")
    return root


def make_udiat(root: Path, n=8, seed=0) -> Path:
    """UDIAT Dataset B: original/000001.png, GT/000001.png, DatasetB.xlsx (Image, Type)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "original").mkdir(parents=True)
    (root / "GT").mkdir()
    rows = []
    for i in range(1, n + 1):
        img, mask = _image(rng, 64, 64, True)
        Image.fromarray(img).save(root / "original" / f"{i:06d}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "GT" / f"{i:06d}.png")
        rows.append({"Image": f"{i:06d}", "Type": "CANCER" if i % 2 else "Benign"})
    pd.DataFrame(rows).to_excel(root / "DatasetB.xlsx", index=False)
    return root
