"""The real BUSI dataset (reduced to <= 256 px, plus seven full-resolution cases): the reader on the
real files, the duplicate groups of the published audits, and leak-free splits.

The data live outside the repository (``../shared/data/busi`` from the repository root, or
``$USBENCH_TEST_DATA/busi``); without them every test here skips and says where it looked. The
expected numbers come from the dataset's README and issue 12 (measured on the original files by
`usbench data inspect`), and from the audit of Pawłowska et al., Data in Brief 48:109247 (2023).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _shared_data import shared_data_dir
from usbench.datasets import load
from usbench.datasets.duplicates import duplicate_groups
from usbench.datasets.splits import PAPER_TEST_RANGES, split
from usbench.datasets.readers import busi_number
from usbench.imageset import read_mask

# benign (195) has three masks, the others two (the dataset's README, measured on the originals)
MULTI_MASK = {f"benign ({n})" for n in (4, 25, 54, 58, 83, 92, 93, 98, 100, 163, 173, 181, 195, 315, 346, 424)} | {"malignant (53)"}


BUSI = shared_data_dir() / "busi" / "Dataset_BUSI_with_GT"
FULL = shared_data_dir() / "busi" / "full_resolution" / "Dataset_BUSI_with_GT"
pytestmark = pytest.mark.skipif(not BUSI.is_dir(), reason=f"real BUSI not found at {BUSI} (set USBENCH_TEST_DATA)")


@pytest.fixture(scope="module")
def busi():
    return load(BUSI)


@pytest.fixture(scope="module")
def groups(busi, tmp_path_factory):
    """BUSI's duplicate groups, decoded once for all test processes: under pytest-xdist the first
    worker fills a duplicates cache in the session's shared temporary folder (under a lock) and
    the other reads it. Module fixtures run before the per-test cache isolation, hence our own."""
    shared = tmp_path_factory.getbasetemp().parent / "busi-duplicates-cache"
    shared.mkdir(exist_ok=True)
    with open(shared / "lock", "w") as lock, pytest.MonkeyPatch.context() as mp:
        fcntl.flock(lock, fcntl.LOCK_EX)
        mp.setenv("USBENCH_CACHE", str(shared))
        return duplicate_groups(busi)


def test_reader_counts_and_every_mask(busi):
    assert busi.counts() == {"benign": 437, "malignant": 210, "normal": 133}
    assert all(r.mask_file is not None for r in busi.records)  # 798 masks: one per image + 18 extra
    assert set(busi.extra_masks) == MULTI_MASK
    assert sum(len(v) for v in busi.extra_masks.values()) == 798 - 780
    assert len(busi.extra_masks["benign (195)"]) == 2


def test_extra_masks_are_merged_by_union(busi):
    rec = busi.filter(ids=["benign (195)"]).records[0]
    files = [rec.mask_file, *busi.extra_masks[rec.id]]
    each = [np.asarray(Image.open(f).convert("L")) > 0 for f in files]
    merged = busi.load_mask(rec)
    np.testing.assert_array_equal(merged, np.logical_or.reduce(each))
    assert all(m.any() for m in each) and merged.sum() > max(m.sum() for m in each)  # three distinct lesions


def test_rgba_masks_are_read(busi):
    rgba = [(r, f) for r in busi.records for f in [r.mask_file, *busi.extra_masks.get(r.id, ())] if Image.open(f).mode == "RGBA"]
    assert sorted(f.name for _, f in rgba) == ["benign (4)_mask_1.png", "benign (54)_mask_1.png"]  # two, both extra masks
    for r, f in rgba:
        raw = np.asarray(Image.open(f))
        assert raw[..., 3].min() == 255  # opaque: accepted, not refused as transparent
        m = read_mask(f)
        assert m.dtype == bool and m.any()
        np.testing.assert_array_equal(m, raw[..., 0] > 0)
        assert busi.load_mask(r)[m].all()  # and merged into the image's lesion mask


def test_images_are_gray_stored_as_rgb_and_at_most_256_px(busi):
    modes = {Image.open(r.file).mode for r in busi.records}  # header only: cheap
    assert modes == {"RGB"}
    for r in busi.records[::40]:  # every 40th: decoding all is the duplicate test's job
        raw = np.asarray(Image.open(r.file))
        assert (raw[..., 0] == raw[..., 1]).all() and (raw[..., 0] == raw[..., 2]).all()
        img = busi.load_image(r)
        assert img.ndim == 2 and img.dtype == np.uint8 and max(img.shape) <= 256
        np.testing.assert_array_equal(img, raw[..., 0])


def test_normal_masks_are_stored_and_empty(busi):
    normal = busi.filter(label="normal")
    assert len(normal) == 133
    for r in normal.records:
        assert r.mask_file is not None and not busi.load_mask(r).any()


def test_full_resolution_cases(busi):
    full = load(FULL)
    assert full.counts() == {"benign": 4, "malignant": 2, "normal": 1}
    assert {k: len(v) for k, v in full.extra_masks.items()} == {"benign (195)": 2, "benign (4)": 1, "benign (424)": 1, "malignant (53)": 1}
    sizes = {r.id: Image.open(r.file).size for r in full.records}
    assert max(max(s) for s in sizes.values()) > 256  # untouched originals
    for r in full.records:  # the reduced copies keep the aspect ratio, longer side 256
        small = Image.open(busi.filter(ids=[r.id]).records[0].file).size
        w, h = sizes[r.id]
        if max(w, h) > 256:
            assert max(small) == 256 and abs(small[0] / small[1] - w / h) < 0.02
    g = duplicate_groups(full, disk_cache=False)
    assert [(x.ids, x.exact, x.cross_label) for x in g] == [(["benign (433)", "malignant (145)"], True, True)]
    a, b = (full.load_image(full.filter(ids=[i]).records[0]) for i in ("benign (433)", "malignant (145)"))
    np.testing.assert_array_equal(a, b)  # the exact cross-label duplicate, checked pixel by pixel


def test_duplicate_groups_match_the_audits(groups):
    exact = [g.ids for g in groups if g.exact]
    near = [g for g in groups if not g.exact]
    assert exact == [["benign (433)", "malignant (145)"]]
    assert len(near) == 134 and sum(len(g.ids) for g in near) == 300  # issue 12, on the original files
    cross = [set(g.ids) for g in groups if g.cross_label]
    assert len(cross) == 8
    assert {"benign (42)", "benign (131)", "malignant (51)"} in cross  # Pawłowska et al. 2023


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seeded_split_is_leak_free_and_stratified(busi, groups, seed):
    sp = split(busi, "seeded", seed=seed, groups=groups)
    test_ids = set(sp.test.ids)
    for g in groups:  # checked here directly, not through Split.leaks
        assert set(g.ids) <= test_ids or not set(g.ids) & test_ids, g.ids
    assert sp.leaks == [] and sp.leak_free and sp.scheme == "seeded"
    for label, n in busi.counts().items():
        assert abs(sp.test.counts()[label] - 0.2 * n) <= 3
    assert len(sp.train) + len(sp.test) == 780


def test_paper_split_as_published_reports_its_leaks_and_paper_dedup_removes_them(busi, groups):
    paper = split(busi, "paper", groups=groups)
    assert paper.test.counts() == {"benign": 35, "malignant": 25, "normal": 20}
    for r in paper.test.records:
        lo, hi = PAPER_TEST_RANGES[r.label]
        assert lo <= busi_number(r.id) <= hi
    assert len(paper.leaks) == 26 and not paper.leak_free  # issue 12
    assert ["benign (42)", "benign (131)", "malignant (51)"] not in paper.leaks  # all three in training
    dedup = split(busi, "paper-dedup", groups=groups)
    assert dedup.test.ids == paper.test.ids and dedup.leaks == [] and dedup.leak_free
    leaked_train_side = {i for g in paper.leaks for i in g if i not in set(paper.test.ids)}
    assert set(dedup.removed) == leaked_train_side
    assert set(dedup.train.ids) == set(paper.train.ids) - leaked_train_side
    assert dedup.describe()["removed"] == dedup.removed


def test_cached_thumbnails_equal_fresh_ones(busi, monkeypatch):
    from usbench.datasets import duplicates

    some = busi.subset(busi.records[::60])
    monkeypatch.setattr(duplicates, "_memo", {})
    fresh, fresh_hashes = duplicates.thumbnails(some)  # decoded, written to this test's cache
    monkeypatch.setattr(duplicates, "_memo", {})
    cached, cached_hashes = duplicates.thumbnails(some)  # read back from SQLite
    np.testing.assert_array_equal(cached, fresh)
    assert cached_hashes == fresh_hashes
    np.testing.assert_allclose(np.linalg.norm(fresh, axis=1), 1.0)
    assert (Path(os.environ["USBENCH_CACHE"]) / duplicates.CACHE_FILE).is_file()


def test_memorization_counts_test_images_duplicated_in_training(busi, groups):
    from usbench.metrics.memorization import heldout_duplicates

    paper = split(busi, "paper", groups=groups)
    test_side = {i for g in paper.leaks for i in g if i in set(paper.test.ids)}
    assert heldout_duplicates(paper.test, paper.train) == len(test_side) > 0
    seeded = split(busi, "seeded", groups=groups)
    assert heldout_duplicates(seeded.test, seeded.train) == 0


def _busi_subset(busi, ids, root: Path) -> Path:
    """A BUSI-layout folder of symlinks to some real images and their masks (nothing copied)."""
    for r in busi.filter(ids=ids).records:
        (root / r.label).mkdir(parents=True, exist_ok=True)
        for f in [r.file, r.mask_file, *busi.extra_masks.get(r.id, ())]:
            (root / r.label / f.name).symlink_to(f)
    return root


def test_real_reference_benchmark_separates_phantom_from_real(busi, groups, tmp_path):
    """CI-sized `usbench run --reference BUSI`: 32 real images per label as the reference, the
    phantom and 16 per label of *other* real images (no duplicate of the reference) as generators.
    Real held-out images must sit closer to the reference than the phantom on every distance."""
    import csv

    from usbench.config import RunConfig
    from usbench.runs import FLOOR_NAME, run_benchmark

    halves = split(busi, "seeded", test_fraction=0.5, seed=0, groups=groups)  # leak-free halves
    pick = lambda s, k: [i for label in ("benign", "malignant", "normal") for i in s.filter(label=label).ids[:k]]
    ref = _busi_subset(busi, pick(halves.train, 32), tmp_path / "ref" / "Dataset_BUSI_with_GT")
    other = _busi_subset(busi, pick(halves.test, 16), tmp_path / "other" / "Dataset_BUSI_with_GT")
    cfg = RunConfig(out=str(tmp_path / "out"), reference=str(ref), generators=["phantom", "folder"],
                    generator={"folder": {"path": str(other)}}, metrics=["frd", "kid@radiomics"],
                    n=48, image_size=128, n_bootstrap=50)
    bench = run_benchmark(cfg)
    assert split(load(ref)).leak_free  # the run's own seeded split of the reference
    rows = {r["generator"]: r for r in csv.DictReader(open(bench.out / "leaderboard.csv")) if r["subset"] == "all"}
    assert set(rows) == {"phantom", "folder", FLOOR_NAME}
    for col in ("frd", "kid_radiomics"):
        for real in ("folder", FLOOR_NAME):  # other real images, and the reference's own floor row
            assert float(rows[real][col]) < float(rows["phantom"][col]), (real, col)
            assert float(rows[real][f"{col}_ci_high"]) < float(rows["phantom"][f"{col}_ci_low"]), (real, col)


def test_segmenter_validation_holdout_keeps_duplicates_with_their_group(busi, groups):
    from usbench.tasks.segmenter import _validation_split

    train = split(busi, "seeded", groups=groups).train
    val = _validation_split(train, 0.15, seed=0)
    val_ids = {r.id for r, v in zip(train.records, val) if v}
    train_ids = set(train.ids)
    straddling = [g.ids for g in groups if set(g.ids) <= train_ids and set(g.ids) & val_ids and set(g.ids) - val_ids]
    assert straddling == []
    assert any(len(set(g.ids) & val_ids) > 1 for g in groups)  # some whole groups went to validation
    assert 0.12 < val.mean() < 0.2
