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
    assert set(overall) == {"phantom", "phantom-blurred", "real (floor)"}  # the real-vs-real row of issue 11
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
    # FRD's interval is for the population d² (issue 11): it may lie below the upward-biased estimate
    for r in rows:
        if r["frd"] and r["frd_ci_high"]:
            assert float(r["frd_ci_low"]) <= float(r["frd_ci_high"])
    assert (bench.out / "runs" / overall["phantom"]["run_id"] / "utility.json").is_file()


def test_reader_study_joins_the_leaderboard_and_the_report(phantom_set, tmp_path):
    """Runs → blinded study → (simulated) ratings → leaderboard reader columns and metric-vs-human plots."""
    from _study_fixtures import simulate_ratings
    from usbench.cli import main
    from usbench.reader_study.analysis import analyze
    from usbench.reader_study.builder import StudyConfig, create_study

    gens = ["phantom", "phantom-blurred", "phantom-flat"]
    cfg = RunConfig(out=str(tmp_path / "out"), reference=str(phantom_set), generators=gens, metrics=["frd"], n=12,
                    image_size=64, n_bootstrap=20)
    bench = run_benchmark(cfg)
    runs = [r.dir for r in bench.runs]
    create_study(phantom_set, runs, tmp_path / "study", StudyConfig(readers=["alice", "bob"], n_per_source=4, size=64, seed=1))
    simulate_ratings(tmp_path / "study", seed=2)
    res = analyze(tmp_path / "study")
    assert main(["leaderboard", str(tmp_path / "out"), "--study", str(tmp_path / "study"), "--out", str(tmp_path / "lb.csv")]) == 0
    rows = {r["run_id"]: r for r in csv.DictReader(open(tmp_path / "lb.csv")) if r["subset"] == "all"}
    for run in bench.runs:
        g = res["per_generator"][run.run_id]
        assert float(rows[run.run_id]["reader_fool_rate"]) == pytest.approx(g["fool_rate"])
        assert float(rows[run.run_id]["reader_auc"]) == pytest.approx(g["reader_auc"])
        assert rows[run.run_id]["reader_n_readers"] == "2"
    per_label = [r for r in csv.DictReader(open(tmp_path / "lb.csv")) if r["subset"] != "all"]
    assert per_label and all(r["reader_fool_rate"] == "" for r in per_label)  # readers judged whole runs
    bench = run_benchmark(cfg, studies=[tmp_path / "study"])  # the report now plots metrics against readers
    assert (bench.out / "figures" / "human_vs_frd.png").is_file()
    assert "Spearman" in (bench.out / "report.html").read_text()
