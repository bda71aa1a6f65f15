"""The public API (usbench.evaluate / generate / run / load_dataset / list_*) and its typed results:
values recomputed independently from the files, one request planner behind generate and run, and
the versioned JSON forms round-tripping exactly (NaN intervals included)."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import usbench
from _spine_fixtures import make_busi
from usbench.errors import InputError
from usbench.results import BenchmarkResult, EvaluationResult, MetricEntry, SkippedMetric


@pytest.fixture
def busi(tmp_path):
    return make_busi(tmp_path / "busi", duplicate=False)


def _mean_gap(gen_dir, ref_set, size):
    """|mean of generated − mean of reference| image means, from the files (the toy metric's definition)."""
    gen = [np.asarray(Image.open(p)).mean() for p in sorted((gen_dir / "images").glob("*.png"))]
    ref = [ref_set.load_image(r, size).mean() for r in ref_set]
    return abs(np.mean(gen) - np.mean(ref))


def test_generate_then_evaluate_three_input_kinds(plugin, busi, tmp_path):
    images = usbench.generate("toy-noise", 9, tmp_path / "gen", masks_from=busi, image_size=32)
    assert len(images) == 9 and sorted(images.counts().items()) == [("benign", 4), ("malignant", 3), ("normal", 2)]
    ref = usbench.load_dataset(busi)
    assert usbench.load_dataset(ref) is ref and len(ref) == 21
    by_path = usbench.evaluate(tmp_path / "gen", str(busi), metrics=["toy-mean-gap"], image_size=32, n_bootstrap=30,
                               cache=tmp_path / "cache")
    by_set = usbench.evaluate(images, ref, metrics=["toy-mean-gap"], image_size=32, n_bootstrap=30, cache=tmp_path / "cache")
    assert by_path.value("toy-mean-gap") == pytest.approx(_mean_gap(tmp_path / "gen", ref, 32), rel=1e-9)
    assert by_set.value("toy_mean_gap") == by_path.value("toy-mean-gap")  # either spelling of the column
    lo, hi, level = by_path.interval("toy-mean-gap")
    assert lo <= by_path.value("toy-mean-gap") <= hi and level == 0.95
    benign = by_path.entry("toy-mean-gap", subset="benign")
    assert benign.n_generated == 4 and benign.n_reference == 10
    assert by_path.interval("toy-mean-gap", subset="benign") == benign.interval
    frame = by_path.to_frame()
    assert list(frame["subset"]) == ["all", "normal", "benign", "malignant"] == by_path.subsets
    assert frame.loc[frame.subset == "benign", "value"].item() == benign.value
    with pytest.raises(KeyError, match="have: toy_mean_gap"):
        by_path.value("fid")


def test_evaluate_json_round_trip_and_schema(plugin, busi, tmp_path):
    usbench.generate("toy-noise", 6, tmp_path / "gen", masks_from=busi, image_size=32)
    res = usbench.evaluate(tmp_path / "gen", busi, metrics=["toy-mean-gap"], image_size=32, n_bootstrap=0,
                           cache=tmp_path / "cache")
    assert math.isnan(res.interval("toy-mean-gap").low)  # no bootstrap, no interval
    assert [(s.subset, s.metric) for s in res.skipped] == [("normal", "toy-mean-gap")]  # 1 normal image: too few
    with pytest.raises(KeyError, match="skipped on subset 'normal'"):
        res.value("toy-mean-gap", subset="normal")
    text = res.to_json(tmp_path / "res.json")
    data = json.loads(text)
    assert data["schema"] == "usbench.evaluation" and data["version"] == 1 and data["results"][0]["ci_low"] is None
    back = EvaluationResult.from_json(tmp_path / "res.json")
    assert back == res and back.entries[0].details == res.entries[0].details
    assert math.isnan(back.interval("toy-mean-gap").high)
    assert EvaluationResult.from_json(text) == res
    full = EvaluationResult.from_json(res.to_json(cache_keys=True))  # the form of a run's metrics.json
    assert full.to_dict(cache_keys=True) == res.to_dict(cache_keys=True) and full.entries[0].key
    with pytest.raises(InputError, match="version 99"):
        EvaluationResult.from_json(json.dumps({**data, "version": 99}))
    with pytest.raises(InputError, match="not a usbench.evaluation"):
        EvaluationResult.from_json(json.dumps({"schema": "something-else"}))


def test_ambiguous_name_is_refused_and_columns_pick_one():
    entries = [MetricEntry("prdc", "precision", "precision", "all", 0.9),
               MetricEntry("prdc", "precision", "precision_radiomics", "all", 0.7, extractor="radiomics")]
    res = EvaluationResult(entries=entries, skipped=[SkippedMetric("fid", "all", "no weights")])
    assert res.value("precision") == 0.9 and res.value("precision_radiomics") == 0.7
    with pytest.raises(KeyError, match="ambiguous"):
        res.value("prdc")
    with pytest.raises(KeyError, match="no weights"):
        res.value("fid")


def test_run_result_matches_leaderboard_and_generate_makes_the_run_images(plugin, busi, tmp_path):
    res = usbench.run(generators=["toy-noise"], metrics=["toy-mean-gap"], reference=busi, n=9, image_size=32,
                      n_bootstrap=20, out=tmp_path / "out")
    assert isinstance(res, BenchmarkResult) and res.report_html.is_file()
    rows = list(csv.DictReader(open(res.leaderboard_csv)))
    overall = next(r for r in rows if r["subset"] == "all" and r["generator"] == "toy-noise")  # not the real (floor) row
    assert float(overall["toy_mean_gap"]) == res.value("toy-mean-gap", "toy-noise")
    assert float(overall["toy_mean_gap_ci_low"]) == res.interval("toy-mean-gap", "toy-noise").low
    run = res.run("toy-noise")
    assert run.run_id == overall["run_id"] and run.info.n == 9
    frame = res.to_frame()
    assert set(frame["generator"]) == {"toy-noise"} and len(frame) == len(run.evaluation.entries)
    # usbench.generate plans the same requests as usbench.run: the same pixels
    gen = usbench.generate("toy-noise", 9, tmp_path / "gen", masks_from=busi, image_size=32)
    run_records = {r.id: r for r in run.images}
    assert sorted(run_records) == sorted(r.id for r in gen)
    for rec in gen:
        assert np.array_equal(gen.load_image(rec), run.images.load_image(run_records[rec.id]))
    back = BenchmarkResult.from_json(res.to_json())
    assert back.runs[0].evaluation == run.evaluation and back.rows == json.loads(json.dumps(res.rows))
    assert back.value("toy-mean-gap", "toy-noise") == res.value("toy-mean-gap", "toy-noise")


def test_lists_and_lazy_exports(plugin):
    assert {"phantom", "sd-busi", "toy-noise"} <= set(usbench.list_generators())
    assert {"fid", "kid", "frd", "toy-mean-gap"} <= set(usbench.list_metrics())
    assert {"busi", "busbra", "udiat", "imageset", "folder", "phantom-busi"} <= set(usbench.list_datasets())
    assert set(usbench.__all__) <= set(dir(usbench))
    # a public name equal to a submodule would be overwritten by the module on its first import
    modules = {p.stem for p in Path(usbench.__file__).parent.iterdir() if p.suffix == ".py" or p.is_dir()}
    assert not set(usbench.__all__) & modules
    with pytest.raises(AttributeError):
        usbench.no_such_thing  # noqa: B018


def test_a_dataset_is_one_registered_reader(tmp_path, monkeypatch):
    """A new layout (here: a folder with `cases.txt` naming one image per line) is one DatasetReader."""
    from usbench.datasets import DATASETS, DatasetReader, load
    from usbench.imageset import ImageRecord, ImageSet

    def read(root):
        names = (root / "cases.txt").read_text().split()
        return ImageSet([ImageRecord(id=n, file=(root / f"{n}.png").resolve(), label="benign") for n in names],
                        name="cases", root=root)

    monkeypatch.setitem(DATASETS._loaded, "cases", DatasetReader("cases", lambda r: (r / "cases.txt").is_file(), read, 40))
    root = tmp_path / "d"
    root.mkdir()
    for n in ("a", "b"):
        Image.fromarray(np.full((8, 8), 7, np.uint8)).save(root / f"{n}.png")
    assert load(root).ids == ["a", "b"]  # without cases.txt: any folder of images
    (root / "cases.txt").write_text("b\n")
    got = usbench.load_dataset(root)
    assert got.name == "cases" and got.ids == ["b"] and "cases" in usbench.list_datasets()
    assert load(root, layout="folder").ids == ["a", "b"]  # a layout named explicitly wins over detection
    empty = tmp_path / "e"
    (empty / "x").mkdir(parents=True)
    (empty / "y").mkdir()
    with pytest.raises(InputError, match="cases"):  # the message lists every layout, the new one too
        load(empty)


def test_shared_data_helper(tmp_path, monkeypatch):
    from _shared_data import shared_data

    monkeypatch.setenv("USBENCH_TEST_DATA", str(tmp_path))
    (tmp_path / "busi").mkdir()
    assert shared_data("busi") == tmp_path / "busi"
    with pytest.raises(pytest.skip.Exception, match="USBENCH_TEST_DATA"):
        shared_data("mrmc", "vandyke.csv")
