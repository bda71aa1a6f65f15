"""The blinding audit (``usbench study audit STUDY``): can anything but the pixels tell real from generated?

Every channel a reader (or anyone given a copy of the study folder) could look at is measured as
the AUC of separating real from generated images by that channel alone, reported as
``max(AUC, 1 - AUC)`` (0.5 = no information, 1 = a perfect tell), with a permutation p-value:

* per file: byte size (the HTTP Content-Length), mtime, inode number, directory-listing order,
  file name (the random id read as a number), dimensions, bit depth and colour type, PNG chunk
  layout and ancillary chunks, and the metadata Pillow reads (``im.info``);
* per reader: the serving order (position in the sequence, permuted within reader), the positions
  of the repeats, and in 2AFC the side the real image is on (exact binomial test).

Categorical channels (dimensions, chunks, metadata) are scored by target encoding — each category
stands for its share of generated images — and their permutations are encoded the same way, so the
p-value accounts for the fit. Comparisons: real against all generated images, and against each
generator. A channel **leaks** when its AUC exceeds 0.65 *and* its p-value is below 0.05 divided by
the number of tests (Bonferroni), so a correctly built study passes with high probability, while a
real tell (AUC near 1 on a study of ordinary size) cannot hide. Besides the AUCs, two rules: every
repeat is served under a fresh id, and at least ``washout`` items lie between a case and its repeat.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import stats

from usbench.errors import UsbenchError
from usbench.reader_study.files import read_config, read_key
from usbench.reader_study.store import DB_NAME, RatingsStore

AUC_LIMIT = 0.65
# channels that are random draws of the builder: a leak there is a chance correlation of this draw
RANDOM_CHANNELS = {"inode", "listing order", "file name", "serving order", "repeat positions", "2AFC side of the real image"}
ALPHA = 0.05
N_PERM = 2000


class BlindingLeakError(UsbenchError):
    """A study whose files or order tell real from generated images."""


# --------------------------------------------------------------------------------------------
# AUC with a permutation p-value


def _auc_rows(score: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """AUC of ``score`` (P, N) for labels (P, N) of 0/1, row by row (ties count half)."""
    ranks = stats.rankdata(score, axis=1)
    n1 = labels.sum(axis=1)
    n0 = labels.shape[1] - n1
    return ((ranks * labels).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def _target_encode(codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each item's category replaced by that category's share of label 1, row by row of ``labels``."""
    k = codes.max() + 1
    onehot = np.eye(k)[codes]  # (N, K)
    share = (labels @ onehot) / onehot.sum(axis=0)  # (P, K)
    return share[:, codes]


def separation_test(values, labels, groups=None, categorical: bool = False, n_perm: int = N_PERM, seed: int = 0) -> dict:
    """``max(AUC, 1-AUC)`` of ``values`` for ``labels`` and its permutation p-value.

    With ``groups`` (e.g. readers), labels are permuted within each group and the AUC is the mean of
    the groups' AUCs.
    """
    y = np.asarray(labels, int)
    if categorical:
        _, x = np.unique(np.asarray([str(v) for v in values]), return_inverse=True)
    else:
        x = np.asarray(values, float)
    g = np.zeros(len(y), int) if groups is None else np.unique(np.asarray(groups, str), return_inverse=True)[1]
    if len(np.unique(x)) < 2 or len(np.unique(y)) < 2:
        return {"auc": 0.5, "p": 1.0, "n": int(len(y))}
    rng = np.random.default_rng(seed)
    aucs = np.zeros(n_perm + 1)
    used = 0
    for k in np.unique(g):
        idx = np.flatnonzero(g == k)
        yk = y[idx]
        if len(np.unique(yk)) < 2:
            continue
        perm = np.vstack([yk, rng.permuted(np.tile(yk, (n_perm, 1)), axis=1)])
        if categorical:
            aucs += _auc_rows(_target_encode(x[idx], perm), perm)
        else:  # one ranking serves every permutation
            n1 = yk.sum()
            aucs += (perm @ stats.rankdata(x[idx]) - n1 * (n1 + 1) / 2) / (n1 * (len(yk) - n1))
        used += 1
    if not used:
        return {"auc": 0.5, "p": 1.0, "n": int(len(y))}
    sep = np.maximum(aucs / used, 1 - aucs / used)
    p = float((1 + np.sum(sep[1:] >= sep[0] - 1e-12)) / (n_perm + 1))
    return {"auc": float(sep[0]), "p": p, "n": int(len(y))}


# --------------------------------------------------------------------------------------------
# Channels


def _png_layout(data: bytes) -> tuple[str, str, str]:
    """(dimensions, bit depth/colour type, chunk layout) read straight from the PNG bytes."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return "not a PNG", "not a PNG", "not a PNG"
    chunks, i, ihdr = [], 8, b""
    while i + 8 <= len(data):
        n = struct.unpack(">I", data[i:i + 4])[0]
        kind = data[i + 4:i + 8]
        body = data[i + 8:i + 8 + n]
        if kind == b"IHDR":
            ihdr = body
        # the layout: critical chunks by type (IDAT once), ancillary chunks with their content
        name = kind.decode("latin-1")
        entry = name if kind in (b"IHDR", b"IDAT", b"IEND", b"PLTE") else f"{name}:{body.hex()}"
        if not chunks or chunks[-1] != entry or kind != b"IDAT":
            chunks.append(entry)
        i += 12 + n
    w, h, depth, colour = struct.unpack(">IIBB", ihdr[:10]) if len(ihdr) >= 10 else (0, 0, 0, 0)
    return f"{w}x{h}", f"depth {depth} colour {colour}", " ".join(chunks)


def file_channels(study: Path, key: list[dict]) -> dict[str, list]:
    """Per image of the key (same order): the value of every per-file channel."""
    folder = Path(study) / "images"
    listing = {name: i for i, name in enumerate(os.listdir(folder))}
    out: dict[str, list] = {k: [] for k in ("byte size", "mtime", "inode", "listing order", "file name",
                                            "dimensions", "bit depth", "PNG chunks", "metadata")}
    for r in key:
        path = folder / f"{r['image_id']}.png"
        st = path.stat()
        data = path.read_bytes()
        dims, depth, chunks = _png_layout(data)
        with Image.open(path) as im:
            info = sorted((k, str(v)) for k, v in im.info.items())
        out["byte size"].append(st.st_size)
        out["mtime"].append(st.st_mtime_ns)
        out["inode"].append(st.st_ino)
        out["listing order"].append(listing.get(path.name, -1))
        out["file name"].append(int(r["image_id"], 16) if all(c in "0123456789abcdef" for c in r["image_id"]) else hash(r["image_id"]))
        out["dimensions"].append(dims)
        out["bit depth"].append(depth)
        out["PNG chunks"].append(chunks)
        out["metadata"].append(repr(info))
    return out


CATEGORICAL = {"dimensions", "bit depth", "PNG chunks", "metadata"}


def audit_study(study: Path, n_perm: int = N_PERM, seed: int = 0) -> dict:
    """Measure every channel; ``passed`` is False when any leaks or a repeat rule is broken."""
    study = Path(study)
    config = read_config(study)
    key = read_key(study)
    by_id = {r["image_id"]: r for r in key}
    truth = np.array([r["truth"] for r in key])
    gens = sorted({r["generator"] for r in key if r["truth"] == 1})
    comparisons = [("real vs generated", None)] + ([(f"real vs {g}", g) for g in gens] if len(gens) > 1 else [])

    def subset(g):
        return np.array([r["truth"] == 0 or g is None or r["generator"] == g for r in key])

    rows = []
    channels = file_channels(study, key)
    for name, values in channels.items():
        for label, g in comparisons:
            m = subset(g)
            res = separation_test(np.asarray(values, dtype=object)[m], truth[m], categorical=name in CATEGORICAL, n_perm=n_perm, seed=seed)
            rows.append({"channel": name, "comparison": label, **res})

    with RatingsStore(study / DB_NAME) as s:
        seqs = {reader: s.sequence(reader) for reader in s.readers()}
    for name, block in (("serving order", "main"), ("repeat positions", "repeat")):
        for label, g in comparisons:
            pos, y, grp = [], [], []
            for reader, seq in seqs.items():
                for it in seq:
                    k = by_id.get(it.image_id)
                    if it.block == block and k and (k["truth"] == 0 or g is None or k["generator"] == g):
                        pos.append(it.position)
                        y.append(k["truth"])
                        grp.append(reader)
            res = separation_test(pos, y, groups=grp, n_perm=n_perm, seed=seed) if pos else {"auc": 0.5, "p": 1.0, "n": 0}
            rows.append({"channel": name, "comparison": label, **res})
    left_real = [by_id[it.image_id]["truth"] == 0 for seq in seqs.values() for it in seq if it.task == "2afc" and it.image_id in by_id]
    if left_real:
        k, n = int(sum(left_real)), len(left_real)
        rows.append({"channel": "2AFC side of the real image", "comparison": "left vs right", "auc": max(k, n - k) / n,
                     "p": float(stats.binomtest(k, n, 0.5).pvalue), "n": n})

    limit_p = ALPHA / max(len(rows), 1)
    for r in rows:
        r["leak"] = bool(r["auc"] > AUC_LIMIT and r["p"] < limit_p)

    washout = int(config.get("washout", 0))
    checks = []
    gaps, fresh = [], True
    for seq in seqs.values():
        where = {it.image_id: it.position for it in seq if it.block == "main"}
        for it in seq:
            if it.block == "repeat":
                orig = by_id.get(it.image_id, {}).get("repeat_of", "")
                fresh &= bool(orig) and orig != it.image_id
                if orig in where:
                    gaps.append(it.position - where[orig] - 1)
    if gaps:
        checks.append({"check": "repeats under fresh ids", "value": "yes" if fresh else "no", "ok": fresh})
        checks.append({"check": f"washout >= {washout} items", "value": f"min {min(gaps)}", "ok": min(gaps) >= washout})
    leaks = [r for r in rows if r["leak"]]
    return {"study": str(study), "auc_limit": AUC_LIMIT, "alpha": ALPHA, "p_limit_bonferroni": limit_p, "n_perm": n_perm,
            "channels": rows, "checks": checks, "leaks": leaks,
            "passed": not leaks and all(c["ok"] for c in checks)}


def format_audit(report: dict) -> str:
    """A plain table: one line per channel and comparison, the verdict first."""
    verdict = "PASSED: no channel separates real from generated" if report["passed"] else \
        "FAILED: " + "; ".join(f"{r['channel']} ({r['comparison']}) AUC {r['auc']:.2f}" for r in report["leaks"]) + \
        "".join(f"; {c['check']}: {c['value']}" for c in report["checks"] if not c["ok"])
    lines = [verdict, "", f"leak = AUC > {report['auc_limit']} and permutation p < {report['p_limit_bonferroni']:.2g} "
             f"({report['alpha']} / {len(report['channels'])} tests, {report['n_perm']} permutations)", "",
             f"{'channel':<28} {'comparison':<26} {'AUC':>5} {'p':>8}  n"]
    for r in report["channels"]:
        lines.append(f"{r['channel']:<28} {r['comparison']:<26} {r['auc']:5.2f} {r['p']:8.3g}  {r['n']}" + ("  LEAK" if r["leak"] else ""))
    for c in report["checks"]:
        lines.append(f"{c['check']:<55} {c['value']}" + ("" if c["ok"] else "  FAILED"))
    return "\n".join(lines)
