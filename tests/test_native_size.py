"""Native resolution by default (issue 11): ``usbench evaluate`` compares images at their own size
when every image of the sets shares one, refuses sets of mixed sizes unless ``image_size`` is
given, and records which protocol it used; ``usbench run`` keeps generating and comparing at
256 px by default. (FID parity with torch-fidelity at the default settings on non-square folders:
tests/test_metrics_inception.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import usbench
import usbench.imageset as imageset_module
from _metrics_fixtures import textured_image
from usbench.config import RunConfig, load_config
from usbench.errors import ConfigError, InputError
from usbench.imageset import read_gray, write_png
from usbench.metrics.features import FeatureStore
from usbench.results import EvaluationResult

H, W = 48, 64  # not square, not 256


def _folder(root: Path, n: int, seed: int, shape=(H, W), brightness: int = 0) -> Path:
    """A plain folder of ``n`` textured PNGs of ``shape`` (h, w)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = textured_image(rng, max(shape))[: shape[0], : shape[1]].astype(int) + brightness
        write_png(root / f"img{i:03d}.png", np.clip(img, 0, 255).astype(np.uint8))
    return root


def _file_means(folder: Path) -> np.ndarray:
    return np.array([read_gray(p).mean() for p in sorted(folder.glob("*.png"))])


@pytest.fixture
def resizes(monkeypatch):
    """Every (input shape, output shape) of usbench's own resize, as images are loaded."""
    seen: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    original = imageset_module.resize_gray

    def spy(arr, size):
        out = original(arr, size)
        seen.append((arr.shape, out.shape))
        return out

    monkeypatch.setattr(imageset_module, "resize_gray", spy)
    return seen


def test_evaluate_without_image_size_reads_the_native_pixels(plugin, tmp_path, resizes):
    gen, ref = _folder(tmp_path / "gen", 6, seed=1, brightness=20), _folder(tmp_path / "ref", 7, seed=2)
    res = usbench.evaluate(gen, ref, metrics=["toy-mean-gap"], n_bootstrap=0, cache=tmp_path / "cache")
    assert resizes and all(before == after == (H, W) for before, after in resizes)  # loaded, never resampled
    # the metric's value is the one of the files' own pixels
    assert res.value("toy-mean-gap") == pytest.approx(abs(_file_means(gen).mean() - _file_means(ref).mean()), rel=1e-12)
    assert res.image_size == "64x48"
    assert res.provenance["resize_protocol"] == "native 64x48 (no resize), then each extractor's own"
    assert EvaluationResult.from_json(res.to_json()) == res  # the versioned JSON holds the native size
    # an explicit size resizes every image (PIL bicubic) and says so
    resizes.clear()
    res32 = usbench.evaluate(gen, ref, metrics=["toy-mean-gap"], n_bootstrap=0, image_size=32, cache=tmp_path / "cache")
    assert {after for _, after in resizes} == {(32, 32)}
    assert res32.image_size == 32
    assert res32.provenance["resize_protocol"] == "PIL bicubic to 32x32, then each extractor's own"
    assert res32.value("toy-mean-gap") != res.value("toy-mean-gap")


def test_extractors_get_native_images_and_the_cache_tells_native_from_resized(tmp_path, resizes, monkeypatch):
    from usbench.metrics.radiomics import RadiomicsExtractor

    shapes: list[tuple[int, int]] = []
    original = RadiomicsExtractor.extract

    def spy(self, images, n):
        images = list(images)
        shapes.extend(im.shape for im in images)
        return original(self, iter(images), n)

    monkeypatch.setattr(RadiomicsExtractor, "extract", spy)
    gen, ref = _folder(tmp_path / "gen", 8, seed=3, brightness=15), _folder(tmp_path / "ref", 8, seed=4)
    cfg = RunConfig(extractor={"radiomics": {"workers": 1}})
    native = usbench.evaluate(gen, ref, metrics=["kid@radiomics"], n_bootstrap=0, config=cfg, cache=tmp_path / "cache")
    assert shapes == [(H, W)] * 16
    # the features are those of the files as they are
    gen_set = usbench.load_dataset(gen)
    store = FeatureStore(None, image_size=(H, W), options={"radiomics": {"workers": 1}})
    direct = original(store.extractor("radiomics"), iter(read_gray(r.file) for r in gen_set.records), 8)
    np.testing.assert_array_equal(store(gen_set, "radiomics"), direct)
    # a square resize of non-square images is other pixels: not served from the native features
    shapes.clear()
    square = usbench.evaluate(gen, ref, metrics=["kid@radiomics"], n_bootstrap=0, config=cfg, image_size=64,
                              cache=tmp_path / "cache")
    assert shapes == [(64, 64)] * 16  # extracted again, at 64x64
    assert square.value("kid_radiomics") != native.value("kid_radiomics")
    shapes.clear()
    again = usbench.evaluate(gen, ref, metrics=["kid@radiomics"], n_bootstrap=0, config=cfg, cache=tmp_path / "cache")
    assert shapes == [] and again.value("kid_radiomics") == native.value("kid_radiomics")  # native features, from disk


def test_feature_keys_native_versus_resized(tmp_path):
    s = usbench.load_dataset(_folder(tmp_path / "s", 2, seed=5))
    key = lambda size: FeatureStore(None, image_size=size, options={"radiomics": {"workers": 1}}).key(s, "radiomics")  # noqa: E731
    assert key((H, W)) not in {key(W), key(H), key((W, H))}  # native 64x48 is not a square resize, nor 48x64
    assert key((64, 64)) == key(64)  # native 64x64 and a resize to 64 are the same pixels: one cache entry
    assert key(64) != key(32)


def test_sizes_that_differ_are_refused_in_one_line_naming_two_files_and_the_fix(plugin, tmp_path):
    gen, ref = _folder(tmp_path / "gen", 3, seed=1), _folder(tmp_path / "ref", 3, seed=2, shape=(64, 64))
    with pytest.raises(InputError) as err:
        usbench.evaluate(gen, ref, metrics=["toy-mean-gap"], n_bootstrap=0, cache=tmp_path / "cache")
    msg = str(err.value)
    assert "\n" not in msg and "differ in size" in msg
    assert "64x48" in msg and "64x64" in msg and "img000.png" in msg and str(ref) in msg
    assert "--image-size N" in msg and "image_size=N" in msg and "bicubic" in msg
    assert not (tmp_path / "cache").exists()  # refused before any feature was computed or cached
    # within one set too, and the training set counts
    mixed = _folder(tmp_path / "mixed", 2, seed=3)
    _folder(mixed, 1, seed=4, shape=(50, 64)).joinpath("img000.png").rename(mixed / "odd.png")
    with pytest.raises(InputError, match="differ in size.*generated .*odd.png is 64x50"):
        usbench.evaluate(mixed, gen, metrics=["toy-mean-gap"], n_bootstrap=0)
    with pytest.raises(InputError, match="train .* is 64x64"):
        usbench.evaluate(gen, gen, train=ref, metrics=["toy-mean-gap"], n_bootstrap=0)
    # the fix the message gives works
    res = usbench.evaluate(gen, ref, metrics=["toy-mean-gap"], n_bootstrap=0, image_size=48)
    assert res.image_size == 48 and res.provenance["resize_protocol"].startswith("PIL bicubic to 48x48")


def test_config_image_size_is_optional_and_typed(tmp_path):
    assert RunConfig().image_size is None and RunConfig().generation_size == 256
    assert RunConfig(image_size=64).generation_size == 64
    (tmp_path / "a.toml").write_text("[run]\nimage_size = 128\n")
    assert load_config(tmp_path / "a.toml").image_size == 128
    (tmp_path / "b.toml").write_text('[run]\nimage_size = "big"\n')
    with pytest.raises(ConfigError, match="image_size must be int"):
        load_config(tmp_path / "b.toml")


def test_run_without_image_size_still_generates_and_compares_at_256(plugin, tmp_path):
    """`usbench run` needs a generation size: 256 by default, a reference of other sizes resized to it."""
    from _spine_fixtures import make_busi

    busi = make_busi(tmp_path / "busi", duplicate=False)  # images of 48-80 x 60-100 px
    bench = usbench.run(generators=["toy-noise"], metrics=["toy-mean-gap"], reference=busi, n=6, n_bootstrap=0,
                        out=tmp_path / "out")
    run = bench.runs[0]
    assert run.info.image_size == 256 and bench.image_size == 256
    assert {read_gray(r.file).shape for r in run.images} == {(256, 256)}
    assert run.evaluation.image_size == 256
    assert run.evaluation.provenance["resize_protocol"] == "PIL bicubic to 256x256, then each extractor's own"
    assert {r["resize_protocol"] for r in bench.rows} == {"PIL bicubic to 256x256, then each extractor's own"}
