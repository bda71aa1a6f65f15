"""Inception features: FID on folders equals torch-fidelity's calculate_metrics with the same
(random) weights file; weights resolution errors; the feature cache."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from _metrics_fixtures import make_images, write_set
from _metrics_inception_weights import make_random_inception_weights
from usbench.errors import InputError, WeightsError
from usbench.metrics import EXTRACTORS
from usbench.metrics.extractors import INCEPTION_WEIGHTS, InceptionExtractor
from usbench.metrics.features import FeatureStore


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return make_random_inception_weights(tmp_path_factory.mktemp("w") / "random-inception.pth")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    a = write_set(root / "a", make_images(12, seed=1))
    rng = np.random.default_rng(9)
    b = write_set(root / "b", [np.clip(im.astype(int) + rng.integers(-30, 30, im.shape), 0, 255).astype(np.uint8)
                               for im in make_images(12, seed=2)])
    return a, b


def test_inception_fid_equals_torch_fidelity_on_folders(weights, folders, tmp_path, monkeypatch):
    import torch_fidelity

    monkeypatch.setenv("USBENCH_OFFLINE", "1")
    import usbench

    gen, ref = folders
    res = usbench.evaluate(str(gen.root), str(ref.root), metrics=["fid"], inception_weights=weights, image_size=64,
                           n_bootstrap=20, seed=0, cache=tmp_path / "cache")
    result = res.entry("fid")
    assert res.value("fid") == result.value and tuple(res.interval("fid"))[:2] == (result.ci_low, result.ci_high)
    feats = FeatureStore(None, image_size=64, options={"inception": {"weights": str(weights)}})(gen, "inception")
    assert feats.std(axis=0).mean() > 1e-3  # the random network gives informative features
    ref_value = torch_fidelity.calculate_metrics(input1=str(gen.root), input2=str(ref.root), fid=True, cuda=False,
                                                 cache=False, verbose=False, save_cpu_ram=True,
                                                 feature_extractor_weights_path=str(weights))["frechet_inception_distance"]
    assert ref_value > 1e-3
    assert result.value == pytest.approx(ref_value, rel=1e-4)
    assert result.ci_low <= result.ci_high
    assert result.details["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert result.details["weights_official"] is False
    # the disk cache: a new store on the same folder reads features instead of extracting
    store2 = FeatureStore(tmp_path / "cache", image_size=64, options={"inception": {"weights": str(weights)}})
    np.testing.assert_array_equal(store2(gen, "inception"), feats)
    assert store2.hits == 1 and store2.misses == 0


def test_fid_at_default_settings_equals_torch_fidelity_on_non_square_folders(weights, tmp_path, monkeypatch):
    """No image_size: usbench feeds Inception the files' own 80x56 pixels, as torch-fidelity does
    (its TF1 bilinear resize to 299 is the only one), so FID at the defaults is torch-fidelity's."""
    import torch_fidelity

    monkeypatch.setenv("USBENCH_OFFLINE", "1")
    import usbench

    rng = np.random.default_rng(3)
    crop = lambda ims: [im[:56, :80] for im in ims]  # noqa: E731 - 80 wide, 56 high: neither square nor 256
    gen = write_set(tmp_path / "gen", crop(make_images(10, seed=5, size=80)))
    ref = write_set(tmp_path / "ref", [np.clip(im.astype(int) + rng.integers(-30, 30, im.shape), 0, 255).astype(np.uint8)
                                       for im in crop(make_images(10, seed=6, size=80))])
    res = usbench.evaluate(str(gen.root), str(ref.root), metrics=["fid"], inception_weights=weights, n_bootstrap=0,
                           cache=tmp_path / "cache")
    ref_value = torch_fidelity.calculate_metrics(input1=str(gen.root), input2=str(ref.root), fid=True, cuda=False,
                                                 cache=False, verbose=False, save_cpu_ram=True,
                                                 feature_extractor_weights_path=str(weights))["frechet_inception_distance"]
    assert ref_value > 1e-3
    assert res.value("fid") == pytest.approx(ref_value, rel=1e-4)
    assert res.image_size == "80x56" and res.provenance["resize_protocol"].startswith("native 80x56 (no resize)")
    # the old default (every image resized to 256x256 first) measures other pixels: another number
    resized = usbench.evaluate(str(gen.root), str(ref.root), metrics=["fid"], inception_weights=weights, n_bootstrap=0,
                               image_size=256, cache=tmp_path / "cache").value("fid")
    assert resized != pytest.approx(ref_value, rel=1e-3)


@pytest.fixture()
def empty_caches(tmp_path, monkeypatch):
    for var, sub in (("TORCH_HOME", "torch"), ("HF_HOME", "hf"), ("USBENCH_CACHE", "usb")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("USBENCH_OFFLINE", "1")
    monkeypatch.delenv("USBENCH_INCEPTION_WEIGHTS", raising=False)
    return tmp_path


def test_missing_weights_message_names_file_hash_place_and_flag(empty_caches):
    ext = EXTRACTORS.get("inception").from_config({})
    with pytest.raises(WeightsError) as e:
        ext.fingerprint()
    msg = str(e.value)
    assert "\n" not in msg
    for part in (INCEPTION_WEIGHTS.filename, INCEPTION_WEIGHTS.sha256, "--inception-weights", str(empty_caches / "torch")):
        assert part in msg


def test_cached_file_with_wrong_sha256_is_refused(empty_caches):
    target = empty_caches / "torch" / "hub" / "checkpoints" / INCEPTION_WEIGHTS.filename
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not the inception weights")
    with pytest.raises(WeightsError, match="sha256"):
        InceptionExtractor().fingerprint()


def test_explicit_file_under_the_official_name_must_have_the_official_hash(empty_caches, tmp_path):
    p = tmp_path / INCEPTION_WEIGHTS.filename
    p.write_bytes(b"junk")
    with pytest.raises(WeightsError, match="sha256"):
        InceptionExtractor(weights=str(p)).fingerprint()


def test_explicit_file_with_an_expected_hash_is_checked(empty_caches, weights):
    with pytest.raises(WeightsError, match="sha256"):
        InceptionExtractor(weights=str(weights), weights_sha256="0" * 64).fingerprint()
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert digest in InceptionExtractor(weights=str(weights), weights_sha256=digest).fingerprint()


def test_explicit_path_that_does_not_exist(empty_caches, tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        InceptionExtractor(weights=str(tmp_path / "nope.pth")).fingerprint()


def test_a_file_that_is_not_inception_weights_is_a_weights_error(empty_caches, tmp_path):
    import torch

    p = tmp_path / "other.pth"
    torch.save({"a": torch.zeros(1)}, p)
    ext = InceptionExtractor(weights=str(p))
    with pytest.raises(WeightsError, match="not a torch-fidelity Inception"):
        ext.extract(iter([np.zeros((32, 32), np.uint8)]), 1)


def test_mixed_sizes_are_refused(weights):
    ext = InceptionExtractor(weights=str(weights), batch_size=4)
    with pytest.raises(InputError, match="mixed sizes"):
        ext.extract(iter([np.zeros((32, 32), np.uint8), np.zeros((40, 32), np.uint8)]), 2)
