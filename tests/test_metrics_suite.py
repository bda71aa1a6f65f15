"""The registered metrics end to end on generated textured images: a degradation ladder, MS-SSIM
against torchmetrics, memorization on planted copies, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from _metrics_fixtures import degrade, make_images, write_set
from usbench.errors import ConfigError, InputError, NotEnoughImagesError, WeightsError
from usbench.metrics import DEFAULTS, METRICS, OFFLINE_DEFAULTS, MetricContext, MetricResult
from usbench.metrics.features import FeatureStore

SIZE = 64


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    root = tmp_path_factory.mktemp("ladder")
    real = write_set(root / "real", make_images(60, seed=1), "r")
    held = make_images(60, seed=2)
    sets = {"held-out": write_set(root / "held", held, "h")}
    rng = np.random.default_rng(3)
    levels = {"blur": [0.6, 1.2, 2.5], "noise": [10, 25, 50], "contrast": [0.2, 0.4, 0.7]}
    for kind, lv in levels.items():
        for i, level in enumerate(lv):
            sets[f"{kind}{i}"] = write_set(root / f"{kind}{i}", [degrade(im, kind, level, rng) for im in held], f"{kind}{i}_")
    store = FeatureStore(root / "cache", image_size=SIZE, options={"radiomics": {"workers": 1}, "frd-v1": {"workers": 1}})
    return real, sets, store


def run(name, config, gen, ref, store, **kw) -> MetricResult | list[MetricResult]:
    ctx = MetricContext(generated=gen, reference=ref, features=store, seed=0, n_bootstrap=kw.pop("B", 100),
                        image_size=SIZE, **kw)
    return METRICS.get(name).from_config(config).compute(ctx)


@pytest.mark.parametrize("metric,config", [("frd", {}), ("kid", {"extractor": "radiomics"}), ("fid", {"extractor": "radiomics"})])
@pytest.mark.parametrize("kind", ["blur", "noise", "contrast"])
def test_ladder_is_monotonic(ladder, metric, config, kind):
    real, sets, store = ladder
    first = lambda r: r[0] if isinstance(r, list) else r  # noqa: E731  (frd: ln d², then d²)
    values = [first(run(metric, config, sets["held-out"], real, store)).value]
    values += [first(run(metric, config, sets[f"{kind}{i}"], real, store)).value for i in range(3)]
    assert all(a < b for a, b in zip(values, values[1:])), (metric, kind, values)


def test_results_carry_interval_counts_and_details(ladder):
    real, sets, store = ladder
    r = run("kid", {"extractor": "radiomics"}, sets["blur2"], real, store)
    assert r.ci_low <= r.value <= r.ci_high and not math.isnan(r.ci_low)
    assert (r.n_generated, r.n_reference, r.higher_is_better) == (60, 60, False)
    assert r.details["subset_size"] == 60 and "below subset size 1000" in r.details["subset_size_reduced"]
    assert r.details["extractor"] == "radiomics" and r.details["seed"] == 0
    f, f_d2 = run("frd", {}, sets["held-out"], real, store)
    # frd-score's own definition, computed independently: float32 reference z-scores, scipy's sqrtm
    from scipy.linalg import sqrtm

    g32, r32 = store(sets["held-out"], "frd-v1").astype(np.float32), store(real, "frd-v1").astype(np.float32)
    mean, std = r32.mean(0), r32.std(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gz, rz = (g32 - mean) / std, (r32 - mean) / std
    keep = np.isfinite(gz).all(0) & np.isfinite(rz).all(0)
    gz, rz = gz[:, keep].astype(np.float64), rz[:, keep].astype(np.float64)
    s1, s2 = np.cov(gz, rowvar=False), np.cov(rz, rowvar=False)
    d2 = ((gz.mean(0) - rz.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(sqrtm(s1 @ s2).real)
    # scipy's sqrtm of the singular product (N < d) is good to ~1e-5 only, hence the tolerance of the parity claim
    assert f_d2.value == pytest.approx(d2, rel=1e-4) and f.value == pytest.approx(math.log(d2), rel=1e-4)
    # the interval is for the population d², below the upward-biased plug-in estimate: not around it
    assert f.ci_low <= f.ci_high and 0 <= f_d2.ci_low <= f_d2.ci_high
    assert f.ci_high == pytest.approx(math.log(f_d2.ci_high))
    again, _ = run("frd", {}, sets["held-out"], real, store)
    assert (again.ci_low, again.ci_high) == (f.ci_low, f.ci_high)  # seeded


def test_prdc_family_on_radiomics(ladder):
    from prdc import compute_prdc

    real, sets, store = ladder
    results = run("prdc", {"extractor": "radiomics"}, sets["noise2"], real, store)
    assert [r.name for r in results] == ["precision", "recall", "density", "coverage"]
    from usbench.metrics.transforms import rank_gaussian

    (real_z, gen_z), _ = rank_gaussian(store(real, "radiomics"), store(sets["noise2"], "radiomics"))
    ref = compute_prdc(real_features=real_z, fake_features=gen_z, nearest_k=5)
    for r in results:
        assert r.value == pytest.approx(float(ref[r.name]), abs=1e-12)
        assert r.ci_low <= r.value <= r.ci_high and r.higher_is_better
    held = {r.name: r.value for r in run("prdc", {"extractor": "radiomics"}, sets["held-out"], real, store)}
    assert held["precision"] > {r.name: r.value for r in results}["precision"]


def test_fd_infinity_interval_separates_a_degraded_set_from_held_out_real_images(ladder):
    real, sets, store = ladder
    far = run("fd-inf", {"extractor": "radiomics"}, sets["blur2"], real, store)
    near = run("fd-inf", {"extractor": "radiomics"}, sets["held-out"], real, store)
    assert near.ci_high < far.ci_low and len(far.details["sizes"]) > 5
    assert near.ci_low >= 0 and "half-sampling" in far.details["interval"]


def test_msssim_equals_torchmetrics():
    import torch
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm

    from usbench.metrics.diversity import msssim_betas, pairwise_msssim

    rng = np.random.default_rng(0)
    imgs = np.stack(make_images(4, seed=5, size=256))
    pairs = np.array([[0, 1], [2, 3], [1, 3]])
    ours = pairwise_msssim(imgs, pairs)
    # the reference in float64: torchmetrics' own float32 result carries ~2e-5 rounding error
    t = torch.from_numpy(imgs.astype(np.float64))[:, None]
    for (i, j), v in zip(pairs, ours):  # 256 px: torchmetrics' defaults, five scales
        assert v == pytest.approx(float(tm(t[i:i + 1], t[j:j + 1], data_range=255.0)), rel=1e-6)
    small = np.stack(make_images(3, seed=6, size=128))
    assert len(msssim_betas(128)) == 4 and sum(msssim_betas(128)) == pytest.approx(1.0)
    with pytest.raises(ValueError):  # why fewer scales: torchmetrics refuses five at 128 px
        tm(torch.zeros(1, 1, 128, 128), torch.zeros(1, 1, 128, 128), data_range=255.0)
    ts = torch.from_numpy(small.astype(np.float64))[:, None]
    v = pairwise_msssim(small, np.array([[0, 1]]))[0]
    assert v == pytest.approx(float(tm(ts[0:1], ts[1:2], data_range=255.0, betas=msssim_betas(128))), rel=1e-6)
    assert pairwise_msssim(small, np.array([[2, 2]]))[0] == pytest.approx(1.0)


def test_msssim_groups_and_threads_do_not_change_values(monkeypatch):
    """Pairs split over many small groups (images shared across groups, recomputed in each) and run
    on one or two threads give torchmetrics' values, identical between thread counts."""
    import torch
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm

    from usbench.metrics import diversity

    imgs = np.stack(make_images(6, seed=9, size=64))
    pairs = diversity.random_pairs(6, 9, seed=1)
    monkeypatch.setattr(diversity, "GROUP_PIXELS", 3 * 64 * 64)  # at most 3 images per group
    assert len(diversity._pair_groups(pairs, 3)) > 3
    one, two = diversity.pairwise_msssim(imgs, pairs, workers=1), diversity.pairwise_msssim(imgs, pairs, workers=2)
    assert np.array_equal(one, two)
    t = torch.from_numpy(imgs.astype(np.float64))[:, None]
    for (i, j), v in zip(pairs, one):
        assert v == pytest.approx(float(tm(t[i:i + 1], t[j:j + 1], data_range=255.0, betas=diversity.msssim_betas(64))), rel=1e-6)


def test_msssim_diversity_detects_a_collapsed_generator(tmp_path):
    varied = write_set(tmp_path / "varied", make_images(8, seed=7), "v")
    one = make_images(1, seed=8)[0]
    rng = np.random.default_rng(0)
    collapsed = write_set(tmp_path / "collapsed", [degrade(one, "noise", 2, rng) for _ in range(8)], "c")
    a = run("ms-ssim-diversity", {}, varied, varied, None)
    b = run("ms-ssim-diversity", {}, collapsed, varied, None)
    assert b.value > a.value + 0.3
    assert a.details["pairs"] == 28 and a.details["scales"] == 3 and a.details["reference_value"] == pytest.approx(a.value)


def test_memorization_finds_planted_copies(tmp_path):
    train_imgs = make_images(30, seed=10)
    train = write_set(tmp_path / "train", train_imgs, "t")
    held = write_set(tmp_path / "held", make_images(30, seed=11), "h")
    fresh = write_set(tmp_path / "fresh", make_images(30, seed=12), "g")
    copies = write_set(tmp_path / "copies", train_imgs[:10] + make_images(20, seed=13), "c")
    store = FeatureStore(tmp_path / "cache", image_size=SIZE, options={"radiomics": {"workers": 1}})
    cfg = {"extractor": "radiomics"}
    mem_copy = {r.name: r for r in run("memorization", cfg, copies, held, store, train=train)}
    mem_fresh = {r.name: r for r in run("memorization", cfg, fresh, held, store, train=train)}
    assert mem_copy["memorization"].value >= 10 / 30 - 1e-9
    assert mem_copy["memorization-ncc"].value >= 10 / 30 - 1e-9
    assert mem_fresh["memorization-ncc"].value < 0.2 and mem_fresh["memorization"].value < 0.25
    assert mem_copy["authpct"].value <= 100 * 20 / 30 + 1e-9  # the 10 exact copies are never authentic
    assert mem_copy["authpct"].value < mem_fresh["authpct"].value
    pairs = mem_copy["memorization"].details["closest_pairs"]
    assert len(pairs) == 8 and all(s > 0.999 and g[1:] == t[1:] and int(g[1:]) < 10 for g, t, s in pairs)


def test_memorization_without_train_set_is_a_config_error(ladder):
    real, sets, store = ladder
    with pytest.raises(ConfigError, match="training set"):
        run("memorization", {"extractor": "radiomics"}, sets["held-out"], real, store)


def test_too_few_images_says_the_minimum(tmp_path):
    few = write_set(tmp_path / "few", make_images(4, seed=20), "f")
    many = write_set(tmp_path / "many", make_images(10, seed=21), "m")
    store = FeatureStore(None, image_size=SIZE, options={"radiomics": {"workers": 1}})
    with pytest.raises(NotEnoughImagesError, match="prdc needs at least 6 generated images, got 4"):
        run("prdc", {"extractor": "radiomics"}, few, many, store)
    with pytest.raises(NotEnoughImagesError, match="fd-inf needs at least 10"):
        run("fd-inf", {"extractor": "radiomics"}, few, many, store)


def test_nan_features_are_refused(tmp_path):
    s = write_set(tmp_path / "s", make_images(6, seed=22), "s")

    def nan_features(imageset, extractor):
        X = np.random.default_rng(0).normal(size=(len(imageset), 5))
        X[1, 2] = np.nan
        return X

    ctx = MetricContext(generated=s, reference=s, features=nan_features, n_bootstrap=10)
    with pytest.raises(InputError, match="NaN or infinite"):
        METRICS.get("frd").from_config({}).compute(ctx)


def test_unknown_config_key_is_refused():
    with pytest.raises(ConfigError, match="unknown key"):
        METRICS.get("kid").from_config({"subsetsize": 10})


def test_lpips_without_alexnet_weights_is_a_weights_error(tmp_path, monkeypatch):
    for var, sub in (("TORCH_HOME", "torch"), ("HF_HOME", "hf"), ("USBENCH_CACHE", "usb")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("USBENCH_OFFLINE", "1")
    s = write_set(tmp_path / "s", make_images(3, seed=23), "s")
    with pytest.raises(WeightsError, match="alexnet-owt-7be5be79.pth"):
        run("lpips-diversity", {}, s, s, None)


def test_lpips_diversity_with_a_local_alexnet_file(tmp_path):
    import lpips
    import torch
    import torchvision

    torch.manual_seed(0)
    tv = torchvision.models.alexnet()
    path = tmp_path / "alexnet-random.pth"
    torch.save(tv.state_dict(), path)
    s = write_set(tmp_path / "s", make_images(4, seed=24), "s")
    r = run("lpips-diversity", {"weights": str(path), "max_pairs": 3}, s, s, None)
    # the same pairs through lpips itself, AlexNet loaded the way lpips does it
    ref_model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    ref_model.net.slice1[0].load_state_dict(tv.features[0].state_dict())
    for sl in (ref_model.net.slice1, ref_model.net.slice2, ref_model.net.slice3, ref_model.net.slice4, ref_model.net.slice5):
        for key, module in sl._modules.items():
            module.load_state_dict(tv.features[int(key)].state_dict())
    from usbench.metrics.diversity import random_pairs

    imgs = np.stack([s.load_image(rec, SIZE) for rec in s.records])
    t = torch.from_numpy(imgs).float().div(127.5).sub(1)[:, None].expand(-1, 3, -1, -1)
    pairs = random_pairs(4, 3, 0)
    with torch.inference_mode():
        expected = float(ref_model(t[pairs[:, 0]], t[pairs[:, 1]]).mean())
    assert r.value == pytest.approx(expected, rel=1e-5) and r.details["pairs"] == 3


def test_defaults_name_registered_metrics():
    for name, cfg in OFFLINE_DEFAULTS + DEFAULTS:
        METRICS.get(name).from_config(cfg)
    assert all(cfg.get("extractor", "radiomics") == "radiomics" or name in ("ms-ssim-diversity",)
               for name, cfg in OFFLINE_DEFAULTS if name not in ("frd",))


def test_torch_module_extractor_with_a_weights_file(tmp_path):
    import hashlib

    import torch

    from _metrics_fixtures import tiny_net
    from usbench.metrics import EXTRACTORS

    torch.manual_seed(0)
    net = tiny_net()
    path = tmp_path / "tiny.pth"
    torch.save(net.state_dict(), path)
    ext = EXTRACTORS.get("torch-module").from_config({"module": "_metrics_fixtures:tiny_net", "weights": str(path),
                                                      "input_size": 32})
    imgs = make_images(3, seed=30, size=48)
    feats = ext.extract(iter(imgs), 3)
    x = torch.from_numpy(np.stack(imgs)).float().div(255)[:, None].expand(-1, 3, -1, -1)
    x = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    with torch.no_grad():
        expected = net((x - 0.5) / 0.5).double().numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-6)
    assert hashlib.sha256(path.read_bytes()).hexdigest() in ext.fingerprint()


def test_torch_module_and_dinov2_config_errors(tmp_path):
    from usbench.metrics import EXTRACTORS

    with pytest.raises(ConfigError, match="module"):
        EXTRACTORS.get("torch-module").from_config({})
    with pytest.raises(WeightsError, match="dinov2"):
        EXTRACTORS.get("dinov2").from_config({"weights": str(tmp_path / "missing-dinov2")}).fingerprint()


def test_frd_inside_lesion_masks_sees_a_lesion_only_change(tmp_path):
    from scipy.ndimage import gaussian_filter

    from _metrics_fixtures import lesion_image, write_masked_set

    rng = np.random.default_rng(40)
    real = write_masked_set(tmp_path / "real", [lesion_image(rng) for _ in range(40)], "r")
    held_pairs = [lesion_image(rng) for _ in range(40)]
    held = write_masked_set(tmp_path / "held", held_pairs, "h")
    smoothed = []
    for im, mask in held_pairs:  # the lesion's texture smoothed away, the rest untouched
        out = im.copy()
        out[mask] = np.clip(gaussian_filter(im.astype(float), 2.0)[mask], 0, 255).astype(np.uint8)
        smoothed.append((out, mask))
    changed = write_masked_set(tmp_path / "changed", smoothed, "c")
    store = FeatureStore(None, image_size=SIZE, options={"radiomics": {"workers": 1}, "frd-v1": {"workers": 1}})
    lesion = {name: run("frd", {"region": "lesion"}, s, real, store)[0] for name, s in (("held", held), ("changed", changed))}
    whole = {name: run("frd", {}, s, real, store)[0].value for name, s in (("held", held), ("changed", changed))}
    assert lesion["changed"].value - lesion["held"].value > whole["changed"] - whole["held"]
    assert lesion["changed"].value > lesion["held"].value + 1.0
    assert lesion["held"].details["n_generated_with_mask"] == 40 and lesion["held"].n_generated == 40
    no_masks = write_set(tmp_path / "plain", make_images(5, seed=41), "p")
    with pytest.raises(NotEnoughImagesError, match="with a lesion mask"):
        run("frd", {"region": "lesion"}, no_masks, real, store)


def test_every_offline_default_runs_and_serialises_to_json(tmp_path):
    import json

    train = write_set(tmp_path / "train", make_images(12, seed=50), "t")
    real = write_set(tmp_path / "real", make_images(12, seed=51), "r")
    gen = write_set(tmp_path / "gen", make_images(12, seed=52), "g")
    store = FeatureStore(tmp_path / "cache", image_size=SIZE, options={"radiomics": {"workers": 1}, "frd-v1": {"workers": 1}})
    names = []
    for name, cfg in OFFLINE_DEFAULTS:
        out = run(name, cfg, gen, real, store, train=train, B=20)
        for r in out if isinstance(out, list) else [out]:
            d = json.loads(json.dumps(r.to_dict()))
            assert MetricResult.from_dict(d).value == pytest.approx(r.value)
            assert math.isfinite(r.value) and r.n_generated == 12
            names.append(r.name)
    assert names == ["frd", "frd-d2", "kid", "ms-ssim-diversity",  # prdc@radiomics left the offline defaults (issue 11)
                     "memorization", "memorization-ncc", "authpct"]
