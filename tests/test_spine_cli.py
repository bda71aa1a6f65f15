"""Bad input through the CLI: one line on stderr saying what and how to fix it, exit 2, no output left."""

import numpy as np
import pytest
from PIL import Image

from _spine_fixtures import make_busi
from usbench.cli import main


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *words):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])


@pytest.fixture
def busi(tmp_path):
    return make_busi(tmp_path / "busi", counts=(("benign", 4), ("malignant", 3), ("normal", 2)), duplicate=False)


def test_path_does_not_exist(capsys, tmp_path):
    assert_one_line_error(*run_cli(capsys, "data", "inspect", tmp_path / "nope")[::2], "does not exist")


def test_empty_folder(capsys, tmp_path):
    (tmp_path / "e").mkdir()
    assert_one_line_error(*run_cli(capsys, "data", "inspect", tmp_path / "e")[::2], "is empty")


def test_unknown_layout(capsys, tmp_path):
    (tmp_path / "x" / "a").mkdir(parents=True)
    (tmp_path / "x" / "b").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("hi")
    assert_one_line_error(*run_cli(capsys, "data", "inspect", tmp_path / "x")[::2], "none of the known layouts", "BUSI")


def test_corrupt_image(capsys, busi):
    f = busi / "benign" / "benign (2).png"
    f.write_bytes(f.read_bytes()[:60])
    assert_one_line_error(*run_cli(capsys, "data", "inspect", busi)[::2], "benign (2).png", "corrupt or truncated")


def test_rgba_with_transparency_refused_opaque_accepted(capsys, busi):
    f = busi / "benign" / "benign (1).png"
    arr = np.asarray(Image.open(f).convert("RGBA")).copy()
    arr[0, 0, 3] = 0
    Image.fromarray(arr, "RGBA").save(f)
    assert_one_line_error(*run_cli(capsys, "data", "inspect", busi)[::2], "alpha", "convert")
    arr[0, 0, 3] = 255
    Image.fromarray(arr, "RGBA").save(f)
    assert run_cli(capsys, "data", "inspect", busi)[0] == 0


def test_16_bit_refused(capsys, busi):
    f = busi / "normal" / "normal (1).png"
    Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 10).astype(np.uint16)).save(f)
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(busi / "normal" / "normal (1)_mask.png")
    assert_one_line_error(*run_cli(capsys, "data", "inspect", busi)[::2], "16-bit", "8-bit")


def test_palette_image_is_converted(capsys, busi):
    f = busi / "normal" / "normal (1).png"
    gray = np.asarray(Image.open(f).convert("L"))
    Image.fromarray(gray).convert("P").save(f)
    assert Image.open(f).mode == "P"
    from usbench.imageset import read_gray

    np.testing.assert_array_equal(read_gray(f), gray)
    assert run_cli(capsys, "data", "inspect", busi)[0] == 0


def test_mask_of_other_size(capsys, busi):
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(busi / "benign" / "benign (3)_mask.png")
    assert_one_line_error(*run_cli(capsys, "data", "inspect", busi)[::2], "benign (3)_mask.png", "size of their image")


def test_mask_not_binary(capsys, busi):
    f = busi / "benign" / "benign (3)_mask.png"
    m = np.asarray(Image.open(f)).copy()
    m[0, :3] = [1, 2, 3]
    Image.fromarray(m).save(f)
    assert_one_line_error(*run_cli(capsys, "data", "inspect", busi)[::2], "not binary", "threshold")


def test_label_folder_missing(capsys, busi):
    import shutil

    shutil.rmtree(busi / "normal")
    assert_one_line_error(*run_cli(capsys, "data", "inspect", busi)[::2], "lacks the label folder", "normal")


def test_unknown_generator_lists_known(capsys, busi, tmp_path):
    code, _, err = run_cli(capsys, "run", "-g", "nope", "--reference", busi, "--out", tmp_path / "o", "-q")
    assert_one_line_error(code, err, "unknown generator 'nope'", "phantom", "sd-busi")
    assert not (tmp_path / "o").exists()


def test_unknown_metric_lists_known(capsys, busi, tmp_path, plugin):
    code, _, err = run_cli(capsys, "run", "-g", "toy-noise", "-m", "nope", "--reference", busi, "--out", tmp_path / "o")
    assert_one_line_error(code, err, "unknown metric 'nope'", "toy-mean-gap")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("text,words", [
    ("[run]\nnn = 3\n", ["unknown key", "nn", "known keys"]),
    ("[run]\nn = \"many\"\n", ["n must be int", "many"]),
    ("[run]\nn = true\n", ["n must be int", "bool"]),
    ("[run]\ngenerator = \"phantom\"\n", ["generator is a table"]),
    ("[runn]\n", ["unknown table", "runn"]),
    ("[run\n", ["not valid TOML"]),
])
def test_bad_config(capsys, tmp_path, text, words):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    code, _, err = run_cli(capsys, "run", "--config", cfg, "--out", tmp_path / "o")
    assert_one_line_error(code, err, *words)
    assert not (tmp_path / "o").exists()


def test_n_too_small_or_too_large_for_the_folder(capsys, busi, tmp_path, plugin):
    code, _, err = run_cli(capsys, "run", "-g", "toy-noise", "-m", "toy-mean-gap", "--n", "1", "--reference", busi,
                           "--out", tmp_path / "o")
    assert_one_line_error(code, err, "needs at least 2 generated images", "--n")
    assert not (tmp_path / "o").exists()
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[generator.folder]\npath = "{busi}"\n')
    code, _, err = run_cli(capsys, "run", "-g", "folder", "-m", "toy-mean-gap", "--n", "50", "--reference", busi,
                           "--config", cfg, "--out", tmp_path / "o2", "-q")
    assert_one_line_error(code, err, "has 2 images labelled normal", "lower --n")
    assert not list((tmp_path / "o2").glob("runs/*/images/*.png"))


def test_output_not_writable(capsys, busi, tmp_path, plugin):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(capsys, "run", "-g", "toy-noise", "-m", "toy-mean-gap", "--reference", busi,
                           "--out", blocker / "sub", "-q")
    assert_one_line_error(code, err, "cannot write to", "--out")


def test_generate_refuses_to_overwrite_a_set(capsys, busi, tmp_path, plugin):
    out = tmp_path / "g"
    assert run_cli(capsys, "generate", "-g", "toy-noise", "--n", "4", "--labels-from", busi, "--image-size", "32",
                   "--out", out, "-q")[0] == 0
    before = sorted(p.stat().st_mtime_ns for p in out.rglob("*.png"))
    code, _, err = run_cli(capsys, "generate", "-g", "toy-noise", "--n", "4", "--labels-from", busi, "--out", out, "-q")
    assert_one_line_error(code, err, "already holds an image set")
    assert sorted(p.stat().st_mtime_ns for p in out.rglob("*.png")) == before


def test_every_command_has_help_with_examples(capsys):
    for cmd in (["run"], ["generate"], ["evaluate"], ["leaderboard"], ["data", "inspect"], ["doctor"]):
        code, out, _ = run_cli(capsys, *cmd, "--help")
        assert code == 0 and "Example" in out, cmd


def test_evaluate_and_leaderboard_commands(capsys, busi, tmp_path, plugin):
    import csv
    import json

    gen = tmp_path / "g"
    assert run_cli(capsys, "generate", "-g", "toy-noise", "--n", "6", "--labels-from", busi, "--image-size", "32",
                   "--out", gen, "-q")[0] == 0
    code, out, err = run_cli(capsys, "evaluate", "--generated", gen, "--reference", busi, "-m", "toy-mean-gap",
                             "--image-size", "32", "--bootstrap", "20", "--json", "-q", "--cache", tmp_path / "cache")
    assert code == 0, err
    res = json.loads(out)
    assert res["n_generated"] == 6 and res["n_reference"] == 9
    overall = [r for r in res["results"] if r["subset"] == "all"][0]
    assert overall["ci_low"] <= overall["value"] <= overall["ci_high"]
    # 6 requests in the reference's proportions (2:4:3) give one normal image: too few, skipped with the reason
    assert {r["subset"] for r in res["results"]} == {"all", "benign", "malignant"}
    assert res["skipped"] == [{"metric": "toy-mean-gap", "subset": "normal",
                               "reason": "toy-mean-gap needs at least 2 generated images, got 1 (use a larger --n or a larger set)"}]
    assert run_cli(capsys, "run", "-g", "toy-noise", "-m", "toy-mean-gap", "--reference", busi, "--n", "6",
                   "--image-size", "32", "--bootstrap", "20", "--out", tmp_path / "bench", "-q")[0] == 0
    code, out, err = run_cli(capsys, "leaderboard", tmp_path / "bench", "--out", tmp_path / "lb.csv")
    assert code == 0, err
    all_rows = list(csv.DictReader(open(tmp_path / "lb.csv")))
    # the generator's rows, and the real-vs-real floor's beside them (issue 11)
    rows = [r for r in all_rows if r["generator"] == "toy-noise"]
    assert [r["subset"] for r in rows] == ["all", "normal", "benign", "malignant"]
    assert {r["generator"] for r in all_rows} == {"toy-noise", "real (floor)"}
    assert [r["subset"] for r in all_rows if r["generator"] == "real (floor)"][0] == "all"
    assert rows[1]["toy_mean_gap"] == "" and "needs at least 2" in rows[1]["skipped"]
    # the same generator, seed and reference: evaluate and run agree on the number
    assert float(rows[0]["toy_mean_gap"]) == pytest.approx(overall["value"], rel=1e-9)
    assert "toy_mean_gap" in (tmp_path / "lb.md").read_text()
    code, _, err = run_cli(capsys, "leaderboard", tmp_path / "nothing-here", "--out", tmp_path / "x.csv")
    assert_one_line_error(code, err, "does not exist")
