"""The whole chain on the built-in phantom: phantom reference → phantom generator → segmenter-based
adherence, utility and distribution metrics → one leaderboard row with every column family."""

import csv

import pytest

from usbench.config import RunConfig
from usbench.datasets import load
from usbench.datasets.phantom import make_phantom_dataset
from usbench.runs import run_benchmark
from usbench.tasks.segmenter import SegmenterConfig, train_segmenter


@pytest.fixture(scope="module")
def phantom_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("ph") / "phantom"
    make_phantom_dataset(root, n=60, seed=0, size=64)
    return root


def test_run_joins_distribution_task_and_utility_columns(phantom_set, tmp_path):
    seg_dir = tmp_path / "seg"
    train_segmenter(load(phantom_set), seg_dir, SegmenterConfig(image_size=64, epochs=4, channels=(8, 16, 32), batch_size=8))
    cfg = RunConfig(
        out=str(tmp_path / "out"), reference=str(phantom_set), generators=["phantom", "phantom-blurred"],
        metrics=["frd", "kid@radiomics", "mask-adherence", "lesion-presence"], n=24, image_size=64, n_bootstrap=50,
        metric={"mask-adherence": {"segmenter": str(seg_dir)}, "lesion-presence": {"segmenter": str(seg_dir)}},
        utility=True, utility_config={"seeds": 1, "epochs": 2},
    )
    bench = run_benchmark(cfg)
    rows = list(csv.DictReader(open(bench.out / "leaderboard.csv")))
    overall = {r["generator"]: r for r in rows if r["subset"] == "all"}
    assert set(overall) == {"phantom", "phantom-blurred"}
    header = open(bench.out / "leaderboard.csv").readline().strip().split(",")
    for col in ("frd", "kid_radiomics", "mask_dice", "mask_hd95", "mask_dice_ratio", "presence_consistency",
                "utility_auc_real", "utility_auc_real_synth", "utility_tstr_auc"):
        assert col in header, col
        assert overall["phantom"][col] != "", col
    # the faithful phantom is closer to its own reference than the blurred variant, on both distances
    assert float(overall["phantom"]["frd"]) < float(overall["phantom-blurred"]["frd"])
    assert float(overall["phantom"]["kid_radiomics"]) < float(overall["phantom-blurred"]["kid_radiomics"])
    # the phantom honours its conditioning masks: adherence is at the segmenter's ceiling
    assert float(overall["phantom"]["mask_dice_ratio"]) > 0.85
    # intervals bracket their values
    for r in rows:
        if r["frd"]:
            assert float(r["frd_ci_low"]) <= float(r["frd"]) <= float(r["frd_ci_high"])
    assert (bench.out / "runs" / overall["phantom"]["run_id"] / "utility.json").is_file()
