"""The real-vs-real floor: held-out real images of the reference scored like a generator, at the
run's N, per subset, with intervals, as the ``real (floor)`` row of the leaderboard."""

import csv

import pytest

from usbench.config import RunConfig
from usbench.datasets.phantom import make_phantom_dataset
from usbench.imageset import ImageSet
from usbench.runs import FLOOR_NAME, run_benchmark


@pytest.fixture(scope="module")
def phantom_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("floor") / "phantom"
    make_phantom_dataset(root, n=48, seed=0, size=48)
    return root


def test_floor_row_is_real_held_out_images_at_the_same_n(phantom_set, tmp_path):
    cfg = RunConfig(out=str(tmp_path / "out"), reference=str(phantom_set), generators=["phantom-blurred"],
                    metrics=["kid@radiomics"], n=12, image_size=48, n_bootstrap=30)
    bench = run_benchmark(cfg)
    rows = list(csv.DictReader(open(bench.out / "leaderboard.csv")))
    floor = [r for r in rows if r["generator"] == FLOOR_NAME]
    gen = [r for r in rows if r["generator"] == "phantom-blurred"]
    assert {r["subset"] for r in floor} == {r["subset"] for r in gen} and len(floor) > 1  # per subset too
    overall = {r["generator"]: r for r in rows if r["subset"] == "all"}
    f = overall[FLOOR_NAME]
    assert f["n_generated"] == overall["phantom-blurred"]["n_generated"] == "12"
    assert float(f["kid_radiomics_ci_low"]) <= float(f["kid_radiomics"]) <= float(f["kid_radiomics_ci_high"])
    assert float(f["kid_radiomics"]) < float(overall["phantom-blurred"]["kid_radiomics"])
    # its images are real reference images that are not in the comparison set
    floor_set = ImageSet.read(bench.out / "runs" / f["run_id"])
    real = {p.resolve() for p in phantom_set.rglob("*.png")}
    assert {r.file for r in floor_set.records} <= real
    # compare_to = "all" (the default) leaves no held-out images: the floor is scored against the rest
    assert int(f["n_reference"]) == len(bench.reference_set) - 12
