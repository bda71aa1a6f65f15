"""Segmenter, ceiling, mask adherence and lesion presence on toy speckle data with exact masks.

One segmenter is trained once (through the CLI) on a toy set; a toy generator that renders each
image from its conditioning mask with the training renderer must sit at the ceiling, and one whose
recorded masks drift (shifted, dilated) must lose Dice monotonically."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import binary_dilation

sys.path.insert(0, str(Path(__file__).parent))
from _tasks_fixtures import honouring_generator, lesion_mask, make_toy_set  # noqa: E402

from usbench.cli import main  # noqa: E402
from usbench.errors import ConfigError, InputError, WeightsError  # noqa: E402
from usbench.metrics import METRICS, MetricContext  # noqa: E402
from usbench.tasks.segmentation_scores import dice_hd95  # noqa: E402
from usbench.tasks.segmenter import Segmenter  # noqa: E402

SIZE = 64
COUNTS = {"normal": 25, "benign": 45, "malignant": 45}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("seg")
    toy = make_toy_set(base / "toy", COUNTS, size=SIZE, seed=0)
    code = main(["segmenter", "train", "--data", str(base / "toy"), "--out", str(base / "seg"),
                 "--epochs", "20", "--size", str(SIZE)])
    assert code == 0
    return toy, base / "seg", base


def _masks_and_labels(counts, seed):
    rng = np.random.default_rng(seed)
    labels = [l for l, n in counts.items() for _ in range(n)]
    return [lesion_mask(l, SIZE, rng) for l in labels], labels


def _ctx(generated, seg_dir, **kw):
    return MetricContext(generated=generated, reference=generated, seed=0, n_bootstrap=2000, image_size=SIZE,
                         segmenter=str(seg_dir), **kw)


def _by_name(results):
    return {r.name: r for r in results}


def test_card_records_data_split_and_ceiling(trained):
    toy, seg_dir, _ = trained
    card = json.loads((seg_dir / "card.json").read_text())
    assert card["data"]["content_hash"] == toy.content_hash()
    assert card["split"]["scheme"] == "seeded" and card["epochs"] == 20 and card["image_size"] == SIZE
    assert card["labels"] == ["normal", "benign", "malignant"]
    assert card["validation_dice"] > 0.8  # learned, far above chance
    assert card["ceiling"]["dice"] > 0.8 and card["ceiling"]["per_label"]["benign"]["dice"] > 0.8
    # the ceiling's Dice recomputed with the plain formula from fresh predictions on the test ids
    seg = Segmenter.load(seg_dir)
    test = toy.filter(ids=[p["id"] for p in card["ceiling"]["per_image"]])
    pred = seg.predict(np.stack([test.load_image(r, SIZE) for r in test.records]))
    truth = np.stack([test.load_mask(r, SIZE) for r in test.records])
    inter = (pred & truth).sum(axis=(1, 2))
    total = pred.sum(axis=(1, 2)) + truth.sum(axis=(1, 2))
    dice = np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)
    card_dice = {p["id"]: p["dice"] for p in card["ceiling"]["per_image"]}
    np.testing.assert_allclose(dice, [card_dice[r.id] for r in test.records], atol=1e-6)


def test_cli_show_prints_the_card(trained, capsys, tmp_path):
    _, seg_dir, _ = trained
    capsys.readouterr()
    assert main(["segmenter", "show", str(seg_dir)]) == 0
    card = json.loads((seg_dir / "card.json").read_text())
    out = capsys.readouterr().out
    assert f"validation Dice {card['validation_dice']:.3f}" in out and f"Dice {card['ceiling']['dice']:.3f}" in out
    assert main(["segmenter", "show", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "usbench segmenter train" in err[0]


def test_generator_honouring_masks_sits_at_the_ceiling(trained):
    _, seg_dir, base = trained
    masks, labels = _masks_and_labels({"normal": 10, "benign": 25, "malignant": 25}, seed=11)
    gen = honouring_generator(base / "honest", masks, labels, seed=12)
    res = _by_name(METRICS.get("mask-adherence").from_config({}).compute(_ctx(gen, seg_dir)))
    ratio = res["mask_dice_ratio"]
    assert ratio.ci_low <= 1.0 <= ratio.ci_high
    assert ratio.value == pytest.approx(1.0, abs=0.05)
    assert res["mask_dice"].value > 0.8 and res["mask_hd95"].higher_is_better is False
    assert res["mask_dice"].details["counts"] == {"benign": 25, "malignant": 25, "normal": 10}
    # the runner's per-label call: the ratio is then against that label's ceiling
    benign = _by_name(METRICS.get("mask-adherence").from_config({}).compute(_ctx(gen.filter("benign"), seg_dir)))
    card = json.loads((seg_dir / "card.json").read_text())
    assert benign["mask_dice_ratio"].details["ceiling_dice"] == pytest.approx(card["ceiling"]["per_label"]["benign"]["dice"])


def test_normal_images_without_mask_files_count_as_empty_masks(trained, tmp_path):
    # the phantom set stores no mask for normal images; BUSI stores empty ones: both mean "no lesion"
    _, seg_dir, _ = trained
    masks, labels = _masks_and_labels({"normal": 6, "benign": 6}, seed=51)
    gen = honouring_generator(tmp_path / "g", masks, labels, seed=52, normal_masks=False)
    assert sum(r.mask_file is None for r in gen.records) == 6
    res = _by_name(METRICS.get("mask-adherence").from_config({}).compute(_ctx(gen, seg_dir)))
    assert res["mask_dice"].details["counts"] == {"benign": 6, "normal": 6}
    assert res["mask_dice"].value > 0.8
    toy = make_toy_set(tmp_path / "toy", {"normal": 6, "benign": 8, "malignant": 8}, size=32, normal_masks=False)
    assert main(["segmenter", "train", "--data", str(toy.root), "--out", str(tmp_path / "s"), "--epochs", "1",
                 "--size", "32", "--width", "4"]) == 0
    card = json.loads((tmp_path / "s" / "card.json").read_text())
    assert card["labels"] == ["normal", "benign", "malignant"] and card["data"]["left_out_without_mask"] == 0
    assert "normal" in card["ceiling"]["per_label"]


def _adherence(base, seg_dir, name, condition):
    masks, labels = _masks_and_labels({"benign": 20, "malignant": 20}, seed=21)
    gen = honouring_generator(base / name, masks, labels, seed=22, condition=condition)
    return _by_name(METRICS.get("mask-adherence").from_config({}).compute(_ctx(gen, seg_dir, )))


def test_shifted_masks_lower_dice_monotonically(trained):
    _, seg_dir, base = trained
    res = [_adherence(base, seg_dir, f"shift{d}", lambda m, d=d: np.roll(m, d, axis=1)) for d in (0, 3, 6, 12)]
    dice = [r["mask_dice"].value for r in res]
    hd = [r["mask_hd95"].value for r in res]
    assert all(a > b for a, b in zip(dice, dice[1:])), dice
    assert all(a < b for a, b in zip(hd, hd[1:])), hd
    assert res[-1]["mask_dice"].ci_high < res[0]["mask_dice"].ci_low


def test_dilated_masks_lower_dice_monotonically(trained):
    _, seg_dir, base = trained
    res = [_adherence(base, seg_dir, f"dil{r}", lambda m, r=r: binary_dilation(m, iterations=r) if r else m)
           for r in (0, 2, 4, 8)]
    dice = [r["mask_dice"].value for r in res]
    assert all(a > b for a, b in zip(dice, dice[1:])), dice


def test_lesion_presence_follows_the_labels(trained):
    _, seg_dir, base = trained
    masks, labels = _masks_and_labels({"normal": 15, "benign": 15, "malignant": 15}, seed=31)
    honest = honouring_generator(base / "presence-ok", masks, labels, seed=32)
    ok = METRICS.get("lesion-presence").from_config({}).compute(_ctx(honest, seg_dir))
    assert ok.value >= 0.95 and ok.details["ceiling"] >= 0.95
    # a text-conditioned generator that draws lesions into "normal" images and none into "benign" ones
    wrong = ["normal" if l == "benign" else "benign" if l == "normal" else l for l in labels]
    bad = honouring_generator(base / "presence-bad", masks, wrong, seed=32)
    res = METRICS.get("lesion-presence").from_config({}).compute(_ctx(bad, seg_dir))
    assert res.details["per_label"]["normal"] <= 0.1 and res.details["per_label"]["benign"] <= 0.1
    assert res.value == pytest.approx(1 / 3, abs=0.05) and res.ci_high < ok.ci_low


def test_dice_hd95_conventions_and_known_geometry():
    a = np.zeros((4, 40, 40), bool)
    b = np.zeros((4, 40, 40), bool)
    a[0, 10:30, 10:30] = True
    b[0, 10:30, 15:35] = True  # the same square shifted by 5 px: HD95 is 5 (half the boundary moves by 5)
    a[2, 5:9, 5:9] = True  # prediction where there is no lesion
    b[3, 5:9, 5:9] = True  # lesion missed
    dice, hd = dice_hd95(a, b)
    assert dice[0] == pytest.approx(2 * 15 * 20 / (400 + 400))
    assert hd[0] == pytest.approx(5.0)
    assert dice[1] == 1.0 and hd[1] == 0.0  # both empty
    assert dice[2] == 0.0 and dice[3] == 0.0
    assert hd[2] == hd[3] == pytest.approx(math.hypot(40, 40))
    assert np.isfinite(hd).all() and np.isfinite(dice).all()


# ---- bad input ------------------------------------------------------------------------------


def test_missing_segmenter_says_how_to_train_one(tmp_path):
    masks, labels = _masks_and_labels({"benign": 3}, seed=1)
    gen = honouring_generator(tmp_path / "g", masks, labels, seed=1)
    with pytest.raises(WeightsError, match="usbench segmenter train --data"):
        METRICS.get("mask-adherence").from_config({}).compute(_ctx(gen, tmp_path / "nowhere"))
    ctx = MetricContext(generated=gen, reference=gen, image_size=SIZE)  # default location, empty cache
    with pytest.raises(WeightsError, match="no trained segmenter"):
        METRICS.get("lesion-presence").from_config({}).compute(ctx)


def test_generated_set_without_masks_is_refused(trained, tmp_path):
    _, seg_dir, _ = trained
    gen = make_toy_set(tmp_path / "text", {"benign": 4, "malignant": 4}, size=SIZE, masks=False)
    with pytest.raises(InputError, match="mask adherence is impossible.*no conditioning masks"):
        METRICS.get("mask-adherence").from_config({}).compute(_ctx(gen, seg_dir))


def test_other_size_is_noted_or_refused_and_other_labels_refused(trained, tmp_path):
    _, seg_dir, base = trained
    masks, labels = _masks_and_labels({"benign": 4, "malignant": 4}, seed=41)
    gen = honouring_generator(tmp_path / "g", masks, labels, seed=42)
    ctx = _ctx(gen, seg_dir)
    ctx.image_size = 128
    res = METRICS.get("mask-adherence").from_config({}).compute(ctx)
    assert any("resized to the segmenter's 64 px" in n for n in res[0].details["notes"])
    with pytest.raises(ConfigError, match="trained at 64 px but the run uses 128 px"):
        METRICS.get("mask-adherence").from_config({"strict_size": True}).compute(ctx)
    other = honouring_generator(tmp_path / "cyst", masks, ["cyst"] * len(masks), seed=42)
    with pytest.raises(ConfigError, match="trained on labels normal, benign, malignant but the generated set has cyst"):
        METRICS.get("mask-adherence").from_config({}).compute(_ctx(other, seg_dir))


def test_cli_refuses_reference_without_masks_and_too_small_classes(tmp_path, capsys):
    make_toy_set(tmp_path / "nomask", {"benign": 6, "malignant": 6}, size=32, masks=False)
    assert main(["segmenter", "train", "--data", str(tmp_path / "nomask"), "--out", str(tmp_path / "s1"), "--size", "32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no lesion masks" in err[0] and "adherence is impossible" in err[0]
    make_toy_set(tmp_path / "tiny", {"benign": 6, "malignant": 1}, size=32)
    assert main(["segmenter", "train", "--data", str(tmp_path / "tiny"), "--out", str(tmp_path / "s2"), "--size", "32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "malignant" in err[0] and "at least 2" in err[0]
    assert not (tmp_path / "s1").exists() or not any((tmp_path / "s1").iterdir())
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert main(["segmenter", "train", "--data", str(tmp_path / "nomask"), "--out", str(tmp_path / "mine")]) == 2
    assert "holds files but no segmenter card" in capsys.readouterr().err


def test_metrics_are_registered():
    from usbench.tasks.adherence import LesionPresence, MaskAdherence

    assert METRICS.get("mask-adherence") is MaskAdherence and METRICS.get("lesion-presence") is LesionPresence


def test_changed_weights_are_refused(trained, tmp_path):
    import shutil

    _, seg_dir, _ = trained
    copy = tmp_path / "seg"
    shutil.copytree(seg_dir, copy)
    data = (copy / "segmenter.pt").read_bytes()
    (copy / "segmenter.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="sha256.*retrain"):
        Segmenter.load(copy)


def test_postprocessing_drops_specks_and_keeps_the_largest_lesion():
    from usbench.tasks.segmenter import _masks_from_logits

    logits = np.full((2, 20, 20), -5.0)
    logits[0, 2:8, 2:8] = 5  # 36 px lesion
    logits[0, 12:14, 12:14] = 5  # 4 px second blob
    logits[0, 17, 17] = 5  # 1 px speck
    logits[1, 0, 0] = 5  # a speck alone: no lesion
    kept = _masks_from_logits(logits, 0.5, min_fraction=0.005)  # 2 px minimum
    assert kept[0].sum() == 40 and not kept[1].any()
    largest = _masks_from_logits(logits, 0.5, min_fraction=0.005, largest_only=True)
    assert largest[0].sum() == 36 and largest[0, 2:8, 2:8].all() and not largest[1].any()


def test_presence_threshold_is_calibrated_on_validation_images():
    from usbench.tasks.segmenter import calibrate_min_fraction

    logits = np.full((6, 50, 50), -5.0)  # 2500 px images
    logits[0, 0:3, 0:3] = 5  # normal with a 9 px (0.36 %) false positive
    logits[1, 10:13, 10:13] = 5  # another one
    logits[3, 5:10, 5:10] = 5  # lesions of 25 px (1 %) and more
    logits[4, 5:15, 5:15] = 5
    logits[5, 20:27, 20:27] = 5
    labels = ["normal", "normal", "normal", "benign", "malignant", "benign"]
    f, score = calibrate_min_fraction(logits, labels, 0.5, True)
    assert f == 0.005 and score == 1.0  # the smallest grid value above the 0.36 % specks and below 1 %
    assert calibrate_min_fraction(logits[3:], labels[3:], 0.5, True) is None  # no normal images: nothing to calibrate


def test_metric_config_names_the_segmenter(trained, tmp_path):
    _, seg_dir, _ = trained
    masks, labels = _masks_and_labels({"benign": 3, "malignant": 3}, seed=61)
    gen = honouring_generator(tmp_path / "g", masks, labels, seed=62)
    ctx = _ctx(gen, tmp_path / "nowhere")  # the run's option points nowhere; the metric's own key wins
    res = METRICS.get("mask-adherence").from_config({"segmenter": str(seg_dir)}).compute(ctx)
    assert res[0].details["segmenter"] == str(seg_dir)
    with pytest.raises(ConfigError, match="unknown key"):
        METRICS.get("mask-adherence").from_config({"segmentor": str(seg_dir)})
