"""Downstream utility: do generated images help a benign-vs-malignant classifier?

The seed paper added generated images to the training set of a classifier and saw its ROC AUC rise
from 0.81 to 0.87. :func:`run_utility` repeats that design for any generator:

- split the real benign/malignant images (``usbench.datasets.splits``; the test split is the same
  for every arm and seed, so all AUCs are paired on the same cases);
- for each seed train three arms: **real** (real training split), **real+synthetic** (plus N
  generated images), **synthetic** only (train-synthetic-test-real, TSTR), each for the same number
  of optimisation steps;
- score the real test split; per seed, each AUC with DeLong's interval and DeLong's test for the
  difference; across seeds, the mean AUC of each arm and the mean difference, with DeLong intervals
  of those averages (a contrast over all seeds' score vectors on the same cases), and the spread
  (SD) over seeds.

Malignant is the positive class.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from usbench.errors import ConfigError, InputError, NotEnoughImagesError
from usbench.imageset import ImageSet, atomic_write_text
from usbench.tasks import classifier as clf
from usbench.tasks.delong import delong_auc, delong_contrast, delong_test

ARMS = ("real", "real_synth", "synth")
RESULT_FILE = "utility.json"


@dataclass
class UtilityConfig:
    n_synthetic: int = 0  # 0: every benign/malignant image of the synthetic set
    seeds: int = 3
    model: str = "small-cnn"
    image_size: int = 0  # 0: 64 for small-cnn, 224 for resnet18
    epochs: int = 30  # passes over the real training split; every arm gets that many steps
    batch_size: int = 32
    learning_rate: float = 0.0  # 0: 3e-3 for small-cnn, 1e-3 for resnet18
    split: str = "seeded"
    test_fraction: float = 0.2
    split_seed: int = 0
    resnet_weights: str = ""
    require_imagenet: bool = False
    ci_level: float = 0.95

    def __post_init__(self) -> None:
        if self.model not in clf.MODELS:
            raise ConfigError(f"unknown classifier {self.model!r}", f"known: {', '.join(clf.MODELS)}")
        if self.seeds < 1:
            raise ConfigError(f"seeds must be at least 1, got {self.seeds}", "e.g. --seeds 3")
        if self.n_synthetic < 0:
            raise ConfigError(f"--n-synthetic must be 0 (all) or positive, got {self.n_synthetic}", "e.g. --n-synthetic 200")
        if not self.image_size:
            self.image_size = 64 if self.model == "small-cnn" else 224
        if not self.learning_rate:
            self.learning_rate = 3e-3 if self.model == "small-cnn" else 1e-3


def _two_class(imageset: ImageSet) -> ImageSet:
    """The benign and malignant images (normal ones play no part in this experiment)."""
    return imageset.subset([r for r in imageset.records if r.label in ("benign", "malignant")])


def resolve_synthetic(path: str | Path) -> ImageSet:
    """An ImageSet folder, a run directory holding one (``generated/`` or ``images/``), or any dataset folder."""
    from usbench.datasets import load

    p = Path(path).expanduser()
    for cand in (p, p / "generated", p / "images"):
        if (cand / "manifest.csv").is_file():
            return ImageSet.read(cand)
    return load(p)


def _arrays(imageset: ImageSet, size: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.stack([imageset.load_image(r, size) for r in imageset.records]).astype(np.float32)[:, None] / 255.0
    y = np.array([r.label == "malignant" for r in imageset.records], dtype=np.int64)
    return x, y


def _check_both(y: np.ndarray, what: str, fix: str) -> None:
    if y.sum() == 0 or y.sum() == len(y):
        have = "malignant" if y.sum() else "benign"
        raise NotEnoughImagesError(f"{what} holds only {have} images ({len(y)}); an AUC needs both classes", fix)


def run_utility(real: ImageSet, synthetic: ImageSet, config: UtilityConfig | None = None,
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the three arms for every seed and return the result (see the module docstring)."""
    from usbench.datasets.splits import split as split_set

    cfg = config or UtilityConfig()
    real2 = _two_class(real)
    for label in ("benign", "malignant"):
        n = sum(r.label == label for r in real2.records)
        if n < 2:
            raise NotEnoughImagesError(f"the real set has {n} {label} image(s); the utility split needs at least 2 of each class",
                                       "use a real set with benign and malignant images")
    sp = split_set(real2, scheme=cfg.split, test_fraction=cfg.test_fraction, seed=cfg.split_seed)
    x_tr, y_tr = _arrays(sp.train, cfg.image_size)
    x_te, y_te = _arrays(sp.test, cfg.image_size)
    _check_both(y_te, "the real test split", "use a larger real set or another split")
    _check_both(y_tr, "the real training split", "use a larger real set or another split")

    synth2 = _two_class(synthetic)
    if len(synth2) == 0:
        raise InputError(f"{synthetic.name} has no benign or malignant images", "the utility experiment needs labelled generated images")
    if cfg.n_synthetic:
        if cfg.n_synthetic > len(synth2):
            raise NotEnoughImagesError(f"asked for {cfg.n_synthetic} synthetic images but {synthetic.name} has {len(synth2)} benign/malignant",
                                       "lower --n-synthetic or generate more")
        synth2 = synth2.take(cfg.n_synthetic, seed=cfg.split_seed)
    x_sy, y_sy = _arrays(synth2, cfg.image_size)
    tstr_skip = None
    if y_sy.sum() == 0 or y_sy.sum() == len(y_sy):
        tstr_skip = f"synthetic set holds only {'malignant' if y_sy.sum() else 'benign'} images: a classifier cannot be trained on it alone"

    state, info = (None, clf.ModelInfo(cfg.model, "random"))
    if cfg.model == "resnet18":
        state, info = clf.resnet_imagenet_state(cfg.resnet_weights or None, cfg.require_imagenet)
    steps = clf.steps_for(len(x_tr), cfg.epochs, cfg.batch_size)
    train_sets = {
        "real": (x_tr, y_tr),
        "real_synth": (np.concatenate([x_tr, x_sy]), np.concatenate([y_tr, y_sy])),
        "synth": (x_sy, y_sy),
    }
    scores: dict[str, list[np.ndarray]] = {a: [] for a in ARMS}
    for seed in range(cfg.seeds):
        for arm in ARMS:
            if arm == "synth" and tstr_skip:
                continue
            if progress:
                progress(f"seed {seed + 1}/{cfg.seeds}: {arm}")
            x, y = train_sets[arm]
            net = clf.train_classifier(cfg.model, x, y, steps, seed=seed, batch_size=cfg.batch_size,
                                       learning_rate=cfg.learning_rate, imagenet_state=state)
            scores[arm].append(clf.predict_scores(net, x_te))

    result = {
        "kind": "usbench utility (benign vs malignant, positive = malignant)",
        "config": asdict(cfg),
        "model": asdict(info) | {"description": info.describe()},
        "real": {"name": real.name, "content_hash": real.content_hash()},
        "synthetic": {"name": synthetic.name, "content_hash": synthetic.content_hash(), "n_used": len(synth2),
                      "counts": synth2.counts()},
        "split": {**sp.describe(cfg.test_fraction), "train_counts": sp.train.counts(), "test_counts": sp.test.counts()},
        "steps": steps,
        "seeds": list(range(cfg.seeds)),
        "tstr_skipped": tstr_skip,
        "test_ids": sp.test.ids,
        "scores": {a: [s.tolist() for s in v] for a, v in scores.items()},
    }
    result.update(summarize(y_te, scores, cfg.ci_level))
    return result


def summarize(y_test: np.ndarray, scores: dict[str, list[np.ndarray]], ci_level: float = 0.95) -> dict[str, Any]:
    """Per-seed and across-seed DeLong statistics from the arms' test scores."""
    per_seed = []
    k = len(scores["real"])
    for s in range(k):
        row: dict[str, Any] = {"seed": s}
        for arm in ARMS:
            if len(scores[arm]) > s:
                row[f"auc_{arm}"] = delong_auc(y_test, scores[arm][s], ci_level).to_dict()
        row["diff_real_synth_vs_real"] = delong_test(y_test, scores["real"][s], scores["real_synth"][s], ci_level).to_dict()
        if len(scores["synth"]) > s:
            row["diff_synth_vs_real"] = delong_test(y_test, scores["real"][s], scores["synth"][s], ci_level).to_dict()
        per_seed.append(row)

    summary: dict[str, Any] = {}
    arms = [a for a in ARMS if len(scores[a]) == k]
    stacked = np.vstack([np.vstack(scores[a]) for a in arms])  # (len(arms) * k, n_test)
    pos = {a: i for i, a in enumerate(arms)}

    def weights(plus: str, minus: str | None = None) -> np.ndarray:
        w = np.zeros(len(stacked))
        w[pos[plus] * k:(pos[plus] + 1) * k] += 1.0 / k
        if minus:
            w[pos[minus] * k:(pos[minus] + 1) * k] -= 1.0 / k
        return w

    for arm in arms:
        est = delong_contrast(y_test, stacked, weights(arm), null=0.5, ci_level=ci_level).to_dict()
        est["sd_over_seeds"] = float(np.std([r[f"auc_{arm}"]["auc"] for r in per_seed], ddof=1)) if k > 1 else None
        summary[f"auc_{arm}"] = est
    diff = delong_contrast(y_test, stacked, weights("real_synth", "real"), null=0.0, ci_level=ci_level).to_dict()
    diff["sd_over_seeds"] = (float(np.std([r["diff_real_synth_vs_real"]["auc"] for r in per_seed], ddof=1)) if k > 1 else None)
    summary["diff_real_synth_vs_real"] = diff
    if "synth" in pos:
        summary["diff_synth_vs_real"] = delong_contrast(y_test, stacked, weights("synth", "real"), null=0.0,
                                                        ci_level=ci_level).to_dict()
    return {"per_seed": per_seed, "summary": summary, "n_test": int(len(y_test)),
            "n_test_malignant": int(np.sum(y_test)), "ci_method": "DeLong (1988), normal interval; contrasts over seeds"}


def leaderboard_columns(result: dict[str, Any]) -> dict[str, float | None]:
    """The utility columns of the leaderboard (means over seeds; CI of the mean difference)."""
    s = result["summary"]

    def get(key: str, field: str = "auc") -> float | None:
        v = s.get(key, {}).get(field)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    return {
        "utility_auc_real": get("auc_real"),
        "utility_auc_real_synth": get("auc_real_synth"),
        "utility_auc_diff": get("diff_real_synth_vs_real"),
        "utility_auc_diff_ci_low": get("diff_real_synth_vs_real", "ci_low"),
        "utility_auc_diff_ci_high": get("diff_real_synth_vs_real", "ci_high"),
        "utility_auc_diff_p": get("diff_real_synth_vs_real", "p_value"),
        "utility_tstr_auc": get("auc_synth"),
        "utility_model": result["model"]["description"],
        "utility_seeds": len(result["seeds"]),
    }


def write_result(result: dict[str, Any], out: str | Path) -> Path:
    """Write ``utility.json`` atomically into the folder ``out``; return its path."""
    from usbench.imageset import ensure_writable_dir

    path = ensure_writable_dir(Path(out).expanduser()) / RESULT_FILE
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    return path


__all__ = ["ARMS", "UtilityConfig", "leaderboard_columns", "resolve_synthetic", "run_utility", "summarize", "write_result"]
