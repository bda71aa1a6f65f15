"""The utility experiment end to end on toy data (small CNN, CPU), its statistics against sklearn,
and its refusals. The toy classes differ by a posterior shadow under malignant lesions."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).parent))
from _tasks_fixtures import lesion_mask, make_toy_set, render  # noqa: E402

from usbench.cli import main  # noqa: E402
from usbench.errors import WeightsError  # noqa: E402
from usbench.imageset import ImageSet, ImageSetWriter  # noqa: E402
from usbench.tasks.utility import UtilityConfig, leaderboard_columns, run_utility  # noqa: E402

SIZE = 32


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("util")
    real = make_toy_set(base / "real", {"benign": 40, "malignant": 40}, size=SIZE, seed=1)
    run = base / "run-toy"  # a run directory holding its generated set
    synth = make_toy_set(run / "generated", {"benign": 40, "malignant": 40}, size=SIZE, seed=2)
    return base, real, synth


def _label_of(test_id):
    return 1 if test_id.startswith("malignant") else 0


def test_cli_end_to_end_and_statistics_match_sklearn(data, capsys):
    base, real, _ = data
    out = base / "out"
    code = main(["utility", "--real", str(base / "real"), "--synthetic", str(base / "run-toy"), "--seeds", "2",
                 "--size", str(SIZE), "--epochs", "15", "--n-synthetic", "60", "--out", str(out), "--json"])
    assert code == 0
    cols = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    result = json.loads((out / "utility.json").read_text())
    y = np.array([_label_of(i) for i in result["test_ids"]])
    assert result["n_test"] == len(y) == 16 and y.sum() == 8
    per_arm = {arm: [roc_auc_score(y, s) for s in result["scores"][arm]] for arm in ("real", "real_synth", "synth")}
    for seed, row in enumerate(result["per_seed"]):
        for arm in per_arm:
            assert row[f"auc_{arm}"]["auc"] == pytest.approx(per_arm[arm][seed], abs=1e-12)
        assert row["diff_real_synth_vs_real"]["auc"] == pytest.approx(per_arm["real_synth"][seed] - per_arm["real"][seed])
    s = result["summary"]
    assert s["auc_real"]["auc"] == pytest.approx(np.mean(per_arm["real"]))
    assert s["auc_real"]["sd_over_seeds"] == pytest.approx(np.std(per_arm["real"], ddof=1))
    diff = np.mean(per_arm["real_synth"]) - np.mean(per_arm["real"])
    assert s["diff_real_synth_vs_real"]["auc"] == pytest.approx(diff)
    assert cols["utility_auc_diff"] == pytest.approx(diff)
    assert cols["utility_auc_diff_ci_low"] <= diff <= cols["utility_auc_diff_ci_high"]
    assert 0 < cols["utility_auc_diff_p"] <= 1
    assert cols["utility_tstr_auc"] == pytest.approx(np.mean(per_arm["synth"]))
    assert cols["utility_auc_real"] > 0.6 and cols["utility_tstr_auc"] > 0.6  # the CNN learns the shadow
    assert set(cols) >= {"utility_auc_real", "utility_auc_real_synth", "utility_auc_diff", "utility_auc_diff_ci_low",
                         "utility_auc_diff_ci_high", "utility_tstr_auc"}
    assert "random initialisation" in result["model"]["description"]
    assert result["synthetic"]["n_used"] == 60 and result["synthetic"]["counts"] == {"benign": 30, "malignant": 30}
    assert result["seeds"] == [0, 1]


def test_mislabelled_synthetic_images_fail_tstr(data, tmp_path):
    _, real, _ = data
    rng = np.random.default_rng(5)
    with ImageSetWriter(tmp_path / "swapped") as w:  # malignant-looking images labelled benign and vice versa
        for i in range(80):
            drawn = "malignant" if i % 2 else "benign"
            m = lesion_mask(drawn, SIZE, rng)
            w.add(f"s{i}", render(m, rng, drawn), label="benign" if drawn == "malignant" else "malignant", mask=m)
    result = run_utility(real, ImageSet.read(tmp_path / "swapped"), UtilityConfig(seeds=1, image_size=SIZE, epochs=15))
    tstr = result["summary"]["auc_synth"]
    assert tstr["auc"] < 0.3 and tstr["ci_high"] < 0.5  # learnt the labels backwards: worse than chance
    assert result["summary"]["diff_real_synth_vs_real"]["ci_high"] < 0  # and they spoil the real data too
    assert result["summary"]["diff_real_synth_vs_real"]["ci_low"] >= -1  # a difference of AUCs is clipped to [-1, 1]


def test_one_class_synthetic_set_skips_tstr_with_reason(data, tmp_path):
    _, real, _ = data
    benign_only = make_toy_set(tmp_path / "b", {"benign": 10}, size=SIZE, seed=3)
    result = run_utility(real, benign_only, UtilityConfig(seeds=1, image_size=SIZE, epochs=3))
    assert "only benign" in result["tstr_skipped"]
    assert leaderboard_columns(result)["utility_tstr_auc"] is None
    assert "auc_synth" not in result["summary"] and "auc_real_synth" in result["summary"]


def test_resnet18_states_its_initialisation(data, tmp_path, capsys):
    import torch
    from torchvision.models import resnet18

    base, _, _ = data
    weights = tmp_path / "my-resnet18.pth"
    torch.save(resnet18(weights=None).state_dict(), weights)
    args = ["utility", "--real", str(base / "real"), "--synthetic", str(base / "run-toy" / "generated"), "--seeds", "1",
            "--size", str(SIZE), "--epochs", "1", "--model", "resnet18", "--out", str(tmp_path / "o")]
    assert main(args) == 0
    assert "random initialisation" in json.loads((tmp_path / "o" / "utility.json").read_text())["model"]["description"]
    assert main(args + ["--resnet-weights", str(weights)]) == 0
    model = json.loads((tmp_path / "o" / "utility.json").read_text())["model"]
    assert model["init"] == "ImageNet" and model["weights_file"] == str(weights) and len(model["weights_sha256"]) == 64
    capsys.readouterr()
    torch.save({"not": torch.zeros(1)}, tmp_path / "bad.pth")
    assert main(args + ["--resnet-weights", str(tmp_path / "bad.pth")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a torchvision ResNet-18" in err[0]
    with pytest.raises(WeightsError):
        from usbench.tasks.classifier import resnet_imagenet_state

        resnet_imagenet_state(tmp_path / "missing.pth", required=True)


def _busi_named(out, ids):
    rng = np.random.default_rng(0)
    with ImageSetWriter(out) as w:
        for label, num in ids:
            m = lesion_mask(label, SIZE, rng)
            w.add(f"{label} ({num})", render(m, rng, label), label=label, mask=m)
    return out


def test_cli_bad_inputs_exit_2_with_one_line(data, tmp_path, capsys):
    base, _, _ = data
    synth = str(base / "run-toy")
    cases = [
        # a class with too few images for the split
        (make_toy_set(tmp_path / "few", {"benign": 10, "malignant": 1}, size=SIZE).root, "seeded", "1 malignant image"),
        # single-class test split: the paper hold-out holds only benign numbers here -> AUC undefined
        (_busi_named(tmp_path / "busi", [("benign", i) for i in range(400, 420)] + [("malignant", i) for i in range(1, 10)]),
         "paper", "holds only benign images"),
    ]
    for real, split, message in cases:
        code = main(["utility", "--real", str(real), "--synthetic", synth, "--split", split, "--size", str(SIZE),
                     "--seeds", "1", "--epochs", "1", "--out", str(tmp_path / "never")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert main(["utility", "--real", str(base / "real"), "--synthetic", synth, "--n-synthetic", "500", "--size", str(SIZE)]) == 2
    assert "asked for 500 synthetic images" in capsys.readouterr().err
    assert main(["utility", "--real", str(base / "real"), "--synthetic", synth, "--model", "vgg"]) == 2
    assert "unknown classifier" in capsys.readouterr().err
    assert not (tmp_path / "never" / "utility.json").exists()


def test_imagenet_weights_are_found_in_the_torch_cache_and_checked(tmp_path, monkeypatch):
    import os

    import torch
    from torchvision.models import resnet18

    from usbench.tasks.classifier import RESNET18_IMAGENET, resnet_imagenet_state

    cache = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    state, info = resnet_imagenet_state(None, required=False)  # nothing there: random init, stated
    assert state is None and info.init == "random"
    torch.save(resnet18(weights=None).state_dict(), cache / RESNET18_IMAGENET.filename)  # not torchvision's bytes
    with pytest.raises(WeightsError, match="starts with f37072fd"):
        resnet_imagenet_state(None, required=False)
