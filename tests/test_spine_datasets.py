"""Dataset readers, splits and duplicate detection on folders in the real datasets' layouts."""

import numpy as np
from PIL import Image

from _spine_fixtures import make_busbra, make_busi, make_udiat
from usbench.datasets import load
from usbench.datasets.duplicates import duplicate_groups
from usbench.datasets.inspect import inspect
from usbench.datasets.splits import PAPER_TEST_RANGES, split
from usbench.imageset import ImageSet, ImageSetWriter, read_gray


def test_busi_layout_counts_masks_and_rgb(tmp_path):
    root = make_busi(tmp_path / "Dataset_BUSI_with_GT")
    s = load(tmp_path)  # the zip's top folder is found inside the folder named
    assert s.counts() == {"benign": 10, "malignant": 7, "normal": 5}
    rec = s.filter(ids=["benign (2)"]).records[0]
    own = np.asarray(Image.open(root / "benign" / "benign (2)_mask.png")) > 0
    extra = np.asarray(Image.open(root / "benign" / "benign (2)_mask_1.png")) > 0
    np.testing.assert_array_equal(s.load_mask(rec), own | extra)  # several masks of one image: union
    img = s.load_image(rec)
    assert img.ndim == 2 and img.dtype == np.uint8
    np.testing.assert_array_equal(img, np.asarray(Image.open(rec.file))[..., 0])  # gray stored as RGB
    assert s.filter(label="normal").records[0].mask_file is not None
    assert not s.load_mask(s.filter(label="normal").records[0]).any()


def test_busi_paper_split_is_the_published_holdout(tmp_path):
    make_busi(tmp_path / "b", counts=(("benign", 437), ("malignant", 210), ("normal", 133)), duplicate=False, extra_mask=False)
    s = load(tmp_path / "b")
    sp = split(s, scheme="paper", check_leaks=False)
    assert sp.test.counts() == {"benign": 35, "malignant": 25, "normal": 20}
    for r in sp.test:
        lo, hi = PAPER_TEST_RANGES[r.label]
        assert lo <= int(r.id.split("(")[1][:-1]) <= hi
    assert len(sp.train) + len(sp.test) == 780


def test_seeded_split_is_stratified_reproducible_and_keeps_duplicates_on_one_side(tmp_path):
    s = load(make_busi(tmp_path / "b", counts=(("benign", 30), ("malignant", 20), ("normal", 10))))
    a, b = split(s, seed=3), split(s, seed=3)
    assert a.test.ids == b.test.ids and split(s, seed=4).test.ids != a.test.ids
    assert a.test.counts() == {"benign": 6, "malignant": 4, "normal": 2}
    groups = duplicate_groups(s)
    dup = [g for g in groups if set(g.ids) == {"benign (1)", "malignant (21)"}]
    assert dup and dup[0].exact and dup[0].cross_label
    # issue 12: the seeded split used to put the two copies on different sides for some seeds
    sides = set()
    for sd in range(40):
        sp = split(s, seed=sd, groups=groups)
        assert sp.leaks == [] and sp.leak_free
        together = {"benign (1)", "malignant (21)"} <= set(sp.test.ids) or not {"benign (1)", "malignant (21)"} & set(sp.test.ids)
        assert together, f"seed {sd} split the exact duplicate"
        sides.add("benign (1)" in sp.test.ids)
    assert sides == {True, False}, "the pair must go to the test side for some seeds and stay in training for others"


def test_near_duplicates_found_exact_and_distinct_not(tmp_path):
    rng = np.random.default_rng(0)
    base = (rng.random((64, 64)) * 255).astype(np.uint8)
    with ImageSetWriter(tmp_path / "s") as w:
        w.add("a", base)
        w.add("b", np.clip(base.astype(int) + 3, 0, 255).astype(np.uint8))  # re-saved brighter: near
        w.add("c", (rng.random((64, 64)) * 255).astype(np.uint8))
    groups = duplicate_groups(ImageSet.read(tmp_path / "s"))
    assert [g.ids for g in groups] == [["a", "b"]] and not groups[0].exact


def test_busbra_keeps_both_views_of_a_patient_together(tmp_path):
    s = load(make_busbra(tmp_path / "bb", n_patients=12))
    assert s.counts() == {"benign": 16, "malignant": 8}
    for seed in range(5):
        sp = split(s, seed=seed)
        train_groups = {r.group for r in sp.train}
        assert not train_groups & {r.group for r in sp.test}
    assert s.load_mask(s.records[0]) is not None


def test_udiat_reads_xlsx_labels(tmp_path):
    s = load(make_udiat(tmp_path / "u"))
    assert s.counts() == {"malignant": 4, "benign": 4}
    assert s.records[0].id == "000001" and s.records[0].label == "malignant"


def test_inspect_reports_counts_sizes_and_duplicates(tmp_path):
    s = load(make_busi(tmp_path / "b"))
    r = inspect(s)
    assert r["counts"] == {"benign": 10, "malignant": 7, "normal": 5}
    assert r["masks_per_image"] == {"1": 20, "2": 2}  # _mask_1 on benign (2), malignant (2)
    assert {"benign (1)": "benign", "malignant (7)": "malignant"} in r["duplicates"]["cross_label_groups"]
    assert 48 <= r["height"]["min"] <= r["height"]["max"] < 80


def test_imageset_round_trip_and_content_hash(tmp_path):
    rng = np.random.default_rng(1)
    with ImageSetWriter(tmp_path / "s", source="x") as w:
        for i in range(3):
            w.add(f"i{i}", rng.integers(0, 255, (16, 16), dtype=np.uint8), label="benign",
                  mask=np.eye(16, dtype=bool), seed=i)
    s = ImageSet.read(tmp_path / "s")
    h = s.content_hash()
    moved = tmp_path / "moved"
    (tmp_path / "s").rename(moved)
    assert ImageSet.read(moved).content_hash() == h  # names and places do not matter
    arr = read_gray(moved / "images" / "i0.png")
    arr[0, 0] ^= 1
    Image.fromarray(arr).save(moved / "images" / "i0.png")
    assert ImageSet.read(moved).content_hash() != h  # one pixel does
    assert ImageSet.read(moved).load_mask(ImageSet.read(moved).records[1]).sum() == 16


def test_load_mask_memo_follows_the_file_and_hands_out_copies(tmp_path):
    """ImageSet.load_mask is memoised per process: a rewritten mask file is read again, and a
    caller drawing on its mask does not change what the next caller gets."""
    import os

    root = tmp_path / "set"
    with ImageSetWriter(root, source="t") as w:
        m = np.zeros((32, 32), bool)
        m[4:12, 4:12] = True
        w.add("a", np.full((32, 32), 90, np.uint8), label="benign", mask=m)
    s = ImageSet.read(root)
    rec = s.records[0]
    first = s.load_mask(rec, 32)
    assert first.sum() == 64
    first[:] = True  # a caller drawing on its copy
    assert s.load_mask(rec, 32).sum() == 64
    bigger = np.zeros((32, 32), np.uint8)
    bigger[2:18, 2:18] = 255
    Image.fromarray(bigger).save(rec.mask_file)
    st = os.stat(rec.mask_file)
    os.utime(rec.mask_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a later mtime even on coarse clocks
    assert s.load_mask(rec, 32).sum() == 256


def test_load_image_memo_follows_the_file_and_hands_out_copies(tmp_path):
    """ImageSet.load_image is memoised per process too (per requested size): a rewritten image
    is read again, each size is its own entry, and a caller writing into its image does not
    change what the next caller gets."""
    import os

    root = tmp_path / "set"
    with ImageSetWriter(root, source="t") as w:
        w.add("a", np.full((32, 32), 90, np.uint8), label="normal")
    s = ImageSet.read(root)
    rec = s.records[0]
    first = s.load_image(rec)
    assert first.shape == (32, 32) and (first == 90).all()
    first[:] = 0  # a caller writing into its copy
    assert (s.load_image(rec) == 90).all()
    assert s.load_image(rec, 16).shape == (16, 16)
    Image.fromarray(np.full((32, 32), 200, np.uint8)).save(rec.file)
    st = os.stat(rec.file)
    os.utime(rec.file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert (s.load_image(rec) == 200).all()
    assert (s.load_image(rec, 16) == 200).all()
