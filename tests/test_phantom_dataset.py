"""The built-in phantom-busi reference set and `usbench data make-phantom`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from usbench.cli import main
from usbench.datasets.phantom import BUSI_COUNTS, builtin_reference, make_phantom_dataset, split_like_busi
from usbench.errors import ConfigError
from usbench.imageset import read_gray, read_mask
from usbench.phantom import simulate
from usbench.weights import usbench_cache

SMALL = {"normal": 2, "benign": 3, "malignant": 2}


def test_default_counts_are_busis():
    # Al-Dhabyani et al., Data in Brief 28 (2020) 104863: 133 normal, 437 benign, 210 malignant.
    assert BUSI_COUNTS == {"normal": 133, "benign": 437, "malignant": 210}
    assert split_like_busi(780) == BUSI_COUNTS
    for n in (1, 10, 77):
        counts = split_like_busi(n)
        assert sum(counts.values()) == n
        assert all(abs(counts[k] - n * v / 780) < 1 for k, v in BUSI_COUNTS.items())


def test_builtin_reference_is_built_once_into_the_cache():
    ref = builtin_reference(size=48, seed=0, counts=SMALL)
    assert ref.name == "phantom-busi" and len(ref) == 7 and ref.counts() == SMALL
    root = Path(ref.root)
    assert root.parent == (usbench_cache() / "datasets").resolve()
    assert root.name.startswith("phantom-busi-48-0-")
    for rec in ref:
        assert rec.source == "phantom-busi" and rec.group == "" and rec.seed is not None
        image = ref.load_image(rec)
        assert image.shape == (48, 48)
        mask = ref.load_mask(rec)
        if rec.label == "normal":
            assert rec.mask_file is None and mask is None
        else:
            assert mask.any()
        # the recorded seed reproduces the image and the mask
        again, again_mask = simulate(rec.label, rec.seed, 48)
        assert np.array_equal(image, again)
        if mask is not None:
            assert np.array_equal(mask, again_mask)
    manifest = root / "manifest.csv"
    stamp = manifest.stat().st_mtime_ns
    hash_before = ref.content_hash()
    second = builtin_reference(size=48, seed=0, counts=SMALL)
    assert manifest.stat().st_mtime_ns == stamp and second.content_hash() == hash_before
    assert [p.name for p in (usbench_cache() / "datasets").iterdir()] == [root.name]  # no leftovers


def test_other_seed_other_set():
    a = builtin_reference(size=32, seed=0, counts={"benign": 2})
    b = builtin_reference(size=32, seed=1, counts={"benign": 2})
    assert a.root != b.root and a.content_hash() != b.content_hash()


def test_bad_counts_and_size():
    with pytest.raises(ConfigError):
        builtin_reference(size=16, counts=SMALL)
    with pytest.raises(ConfigError):
        builtin_reference(size=32, counts={"benign": -1})
    with pytest.raises(ConfigError):
        builtin_reference(size=32, counts={"cysts": 3})


def test_make_phantom_writes_busi_layout(tmp_path, capsys):
    out = tmp_path / "busi"
    assert main(["data", "make-phantom", "--out", str(out), "--n", "10", "--seed", "0", "--size", "48"]) == 0
    counts = split_like_busi(10)
    for label, n in counts.items():
        files = sorted(p.name for p in (out / label).iterdir())
        expected = sorted([f"{label} ({i}).png" for i in range(1, n + 1)] + [f"{label} ({i})_mask.png" for i in range(1, n + 1)])
        assert files == expected
        for i in range(1, n + 1):
            image = read_gray(out / label / f"{label} ({i}).png")
            mask = read_mask(out / label / f"{label} ({i})_mask.png", image.shape)
            assert image.shape == (48, 48)
            assert mask.any() == (label != "normal")
    # same seed and index: the same images as the built-in reference set
    ref = builtin_reference(size=48, seed=0, counts=counts)
    rec = ref.filter(label="benign").records[0]
    assert np.array_equal(ref.load_image(rec), read_gray(out / "benign" / "benign (1).png"))
    assert "wrote 10 phantom images" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [["--n", "5", "--size", "16"], ["--n", "0"], ["--n", "5", "--size", "2048"]],
    ids=["size-below-32", "zero-images", "size-too-large"],
)
def test_make_phantom_bad_input_exits_2_without_output(tmp_path, capsys, args):
    out = tmp_path / "never"
    assert main(["data", "make-phantom", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert not out.exists() and os.listdir(tmp_path) == []


def test_make_phantom_refuses_a_non_empty_out(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["data", "make-phantom", "--out", str(out), "--n", "3", "--size", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "not empty" in err and "\n" not in err
    assert os.listdir(out) == ["notes.txt"]
    # an existing empty folder is fine
    empty = tmp_path / "empty"
    empty.mkdir()
    assert make_phantom_dataset(empty, n=3, seed=0, size=32) == split_like_busi(3)
