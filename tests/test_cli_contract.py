"""The command-line contract (issue 14), one row per bad input, run through the real CLI.

Every bad input must end with exit code 2, exactly one line on stderr, no traceback, and the case's
folder exactly as it was before (nothing left, nothing of the user's overwritten). Each case runs
``python -m usbench ARGS`` in a process of its own (forked from tests/_cli_runner.py, which pays
the import time once) in its own folder, with its own HOME and caches; a few cases also run as a
plain ``python -m usbench`` subprocess to show the runner changes nothing. Validation must fail
before any work, so the whole table takes seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


# ---------------------------------------------------------------------------------------------
# inputs, each built in the case's folder


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _noise(seed: int, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)


def _disk(size: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2).astype(np.uint8) * 255


def make_busi(d: Path, name: str = "busi") -> None:
    for k, label in enumerate(("benign", "malignant", "normal")):
        for i in range(1, 4):
            _png(d / name / label / f"{label} ({i}).png", _noise(10 * k + i))
            _png(d / name / label / f"{label} ({i})_mask.png", _disk() if label != "normal" else np.zeros((64, 64), np.uint8))


def _manifest(d: Path, rows: list[str], header: str = "id,file,mask_file,label,prompt,seed,source", encoding="utf-8") -> None:
    (d / "manifest.csv").write_bytes(("\n".join([header, *rows]) + "\n").encode(encoding))


def make_gen(d: Path, name: str = "gen", mask=None) -> None:
    root = d / name
    rows = []
    for i in range(4):
        _png(root / "images" / f"g{i}.png", _noise(100 + i))
        m = ""
        if mask is not None:
            _png(root / "masks" / f"g{i}.png", mask)
            m = f"masks/g{i}.png"
        rows.append(f"g{i},images/g{i}.png,{m},benign,,{i},test")
    _manifest(root, rows)


def make_gen96(d: Path) -> None:
    """Generated images of 96x96 px: the reference (busi) is 64x64, so there is no native size."""
    for i in range(4):
        _png(d / "gen96" / f"g{i}.png", _noise(300 + i, size=96))


def make_graymask(d: Path) -> None:
    m = _disk()
    m[:8] = 128  # a gray level: not a binary mask
    make_gen(d, "graymask", mask=m)


def make_badseed(d: Path) -> None:
    _png(d / "badseed" / "images" / "a.png", _noise(1))
    _manifest(d / "badseed", ["a,images/a.png,,benign,,abc,test"])


def make_latin1(d: Path) -> None:
    _png(d / "latin1" / "images" / "a.png", _noise(1))
    _manifest(d / "latin1", ["a,images/a.png,,bénin,,1,test"], encoding="latin-1")


def make_udiat_noxlsx(d: Path) -> None:
    _png(d / "udiat" / "original" / "000001.png", _noise(1))
    _png(d / "udiat" / "GT" / "000001.png", _disk())


def make_busbra_empty(d: Path) -> None:
    _png(d / "busbra" / "Images" / "bus_0001-l.png", _noise(1))
    (d / "busbra" / "bus_data.csv").write_bytes(b"")


def make_plain(d: Path) -> None:
    for i in range(4):
        _png(d / "plain" / f"img{i}.png", _noise(200 + i))


def make_onepixel(d: Path) -> None:
    for i in range(4):
        _png(d / "onepx" / f"p{i}.png", np.full((1, 1), 40 * i, np.uint8))


def make_bomb(d: Path) -> None:
    """A PNG whose header says 20000x20000 (400 Mpx): Pillow refuses it as a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 20001)) + chunk(b"IEND", b"")
    (d / "bomb").mkdir()
    (d / "bomb" / "big.png").write_bytes(data)
    _png(d / "bomb" / "small.png", _noise(3))


def make_corrupt(d: Path) -> None:
    _png(d / "corrupt" / "ok.png", _noise(1))
    (d / "corrupt" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")


def make_empty(d: Path) -> None:
    (d / "empty").mkdir()


def make_afile(d: Path) -> None:
    (d / "afile").write_text("the user's file\n")


def make_mine(d: Path) -> None:
    (d / "mine").mkdir()
    (d / "mine" / "notes.txt").write_text("the user's notes\n")


def make_runs(d: Path) -> None:
    """A finished benchmark folder as `usbench run` leaves it (run.json + metrics.json)."""
    run = d / "results" / "runs" / "phantom-0123456789"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({
        "run_id": "phantom-0123456789", "generator": "phantom", "n": 20, "seed": 0, "image_size": 64,
        "reference": "busi", "reference_hash": "ab" * 32, "split": "seeded", "versions": {}, "generator_config": {},
        "generator_fingerprint": "f" * 16, "created": "2026-01-01T00:00:00+00:00"}))
    (run / "metrics.json").write_text(json.dumps({"n_bootstrap": 10, "generated_hash": "cd" * 32, "entries": {
        "k1": {"metric": "frd", "config": {}, "subset": "all", "results": [
            {"name": "frd", "column": "frd", "value": 1.5, "ci_low": 1.0, "ci_high": 2.0, "higher_is_better": False,
             "n_generated": 20, "n_reference": 9, "ci_level": 0.95}]}}}))


def make_user_leaderboard(d: Path, suffix: str) -> None:
    make_runs(d)
    (d / f"mine{suffix}").write_text("the user's own table\n")


def make_user_out(d: Path, name: str) -> None:
    make_busi(d)
    (d / "out").mkdir()
    (d / "out" / name).write_text("<p>the user's own page</p>\n")


def make_tomls(d: Path) -> None:
    (d / "bad.toml").write_text("[run\nn = 3\n")
    (d / "unknown.toml").write_text("[run]\nnn = 3\n")
    (d / "badtype.toml").write_text('[run]\nn = "many"\n')
    (d / "badtable.toml").write_text("[runs]\nn = 3\n")
    (d / "badn.toml").write_text("[run]\nn = 0\n")


def make_ratings(d: Path) -> None:
    (d / "ratings.csv").write_text("reader,treatment,case,truth,rating\nr1,a,c1,1,notanumber\n")


SETUPS = {
    "busi": make_busi, "gen": make_gen, "gen96": make_gen96, "graymask": make_graymask, "badseed": make_badseed, "latin1": make_latin1,
    "udiat": make_udiat_noxlsx, "busbra": make_busbra_empty, "plain": make_plain, "onepx": make_onepixel,
    "bomb": make_bomb, "corrupt": make_corrupt, "empty": make_empty, "afile": make_afile, "mine": make_mine,
    "runs": make_runs, "tomls": make_tomls, "ratings": make_ratings,
    "user_csv": lambda d: make_user_leaderboard(d, ".csv"), "user_md": lambda d: make_user_leaderboard(d, ".md"),
    "user_html": lambda d: make_user_leaderboard(d, ".html"),
    "user_report": lambda d: make_user_out(d, "report.html"), "user_lbcsv": lambda d: make_user_out(d, "leaderboard.csv"),
}

# ---------------------------------------------------------------------------------------------
# the table: (id, argv, setups, a word the message must hold). `broke` marks the rows of the
# issue's table that broke the contract in 0.1 (23 of them); the others kept it already.

RUN = ["run", "--reference", "busi", "-g", "phantom", "--n", "4", "--bootstrap", "0", "--out", "out"]
GEN = ["generate", "-g", "phantom", "--labels-from", "busi", "--out", "newset"]
EVAL = ["evaluate", "--generated", "gen", "--reference", "busi", "--bootstrap", "0"]

CASES = [
    # --- parsing: typer's own click copy of the exceptions (issue row 1) ---
    ("gen-n-abc", GEN + ["--n", "abc"], ["busi"], "--n", True),
    ("gen-n-float", GEN + ["--n", "1.5"], ["busi"], "--n", True),
    ("run-n-abc", RUN[:-2] + ["--n", "abc"], ["busi"], "--n", True),
    ("run-unknown-flag", RUN + ["--frobnicate"], ["busi"], "--frobnicate", True),
    ("run-train-flag", RUN + ["--train", "busi"], ["busi"], "--train", True),
    ("gen-missing-out", ["generate", "-g", "phantom"], [], "--out", True),
    ("inspect-missing-path", ["data", "inspect"], [], "PATH", True),
    ("unknown-command", ["frobnicate"], [], "frobnicate", True),
    ("eval-bootstrap-abc", EVAL + ["--bootstrap", "abc"], ["busi", "gen"], "--bootstrap", False),
    ("leaderboard-no-dirs", ["leaderboard", "--out", "x.csv"], [], "DIRS", False),
    ("make-phantom-n-abc", ["data", "make-phantom", "--out", "ph", "--n", "abc"], [], "--n", False),
    ("eval-missing-generated", ["evaluate", "--reference", "busi"], ["busi"], "--generated", False),
    ("doctor-unknown-flag", ["doctor", "--frobnicate"], [], "--frobnicate", False),
    ("inspect-seed-abc", ["data", "inspect", "busi", "--seed", "abc"], ["busi"], "--seed", False),
    ("study-serve-missing", ["study", "serve"], [], "STUDY", False),
    ("segmenter-epochs-abc", ["segmenter", "train", "--data", "busi", "--epochs", "abc"], ["busi"], "--epochs", False),
    # --- images and folders ---
    ("eval-bomb", ["evaluate", "--generated", "bomb", "--reference", "busi"], ["busi", "bomb"], "big.png", True),
    ("inspect-bomb", ["data", "inspect", "bomb"], ["bomb"], "big.png", True),
    ("inspect-bad-seed", ["data", "inspect", "badseed"], ["badseed"], "seed", True),
    ("inspect-latin1", ["data", "inspect", "latin1"], ["latin1"], "UTF-8", True),
    ("inspect-udiat-no-xlsx", ["data", "inspect", "udiat"], ["udiat"], "DatasetB", True),
    ("inspect-busbra-empty-csv", ["data", "inspect", "busbra"], ["busbra"], "bus_data.csv", True),
    ("eval-one-pixel", ["evaluate", "--generated", "onepx", "--reference", "busi"], ["busi", "onepx"], "1x1", True),
    ("eval-gray-mask", EVAL[:2] + ["graymask"] + EVAL[3:], ["busi", "graymask"], "binary", True),
    ("inspect-gray-mask", ["data", "inspect", "graymask"], ["graymask"], "binary", False),
    ("inspect-corrupt", ["data", "inspect", "corrupt"], ["corrupt"], "bad.png", False),
    ("inspect-missing", ["data", "inspect", "nowhere"], [], "nowhere", False),
    ("inspect-empty", ["data", "inspect", "empty"], ["empty"], "empty", False),
    ("inspect-file", ["data", "inspect", "afile"], ["afile"], "afile", False),
    ("eval-generated-missing", ["evaluate", "--generated", "nowhere", "--reference", "busi"], ["busi"], "nowhere", False),
    ("eval-reference-missing", ["evaluate", "--generated", "gen", "--reference", "nowhere"], ["gen"], "nowhere", False),
    ("eval-generated-empty", ["evaluate", "--generated", "empty", "--reference", "busi"], ["busi", "empty"], "empty", False),
    ("eval-corrupt", ["evaluate", "--generated", "corrupt", "--reference", "busi"], ["busi", "corrupt"], "bad.png", False),
    ("eval-train-missing", EVAL + ["--train", "nowhere"], ["busi", "gen"], "nowhere", False),
    ("eval-sizes-differ", EVAL[:2] + ["gen96"] + EVAL[3:], ["busi", "gen96"], "--image-size N", False),
    ("eval-train-size-differs", EVAL + ["--train", "gen96"], ["busi", "gen", "gen96"], "--image-size N", False),
    # --- names, before any work ---
    ("run-kid-typo", RUN + ["-m", "kid@incepton"], ["busi"], "incepton", True),
    ("run-unlabelled-reference", RUN[:2] + ["plain"] + RUN[3:], ["plain"], "label", True),
    ("eval-kid-typo", EVAL + ["-m", "kid@incepton"], ["busi", "gen"], "incepton", False),
    ("run-unknown-metric", RUN + ["-m", "fidd"], ["busi"], "fidd", False),
    ("eval-unknown-metric", EVAL + ["-m", "fidd"], ["busi", "gen"], "fidd", False),
    ("run-unknown-generator", RUN[:3] + ["-g", "phantomm"] + RUN[5:], ["busi"], "phantomm", False),
    ("gen-unknown-generator", ["generate", "-g", "phantomm", "--labels-from", "busi", "--out", "newset"], ["busi"], "phantomm", False),
    ("run-reference-missing", RUN[:2] + ["nowhere"] + RUN[3:], [], "nowhere", False),
    ("gen-labels-from-missing", ["generate", "-g", "phantom", "--labels-from", "nowhere", "--out", "newset"], [], "nowhere", False),
    ("run-split-bogus", RUN + ["--split", "random"], ["busi"], "split", False),
    ("run-sd-busi-no-model", RUN[:3] + ["-g", "sd-busi"] + RUN[5:], ["busi"], "sd-busi", False),
    ("run-inception-weights-missing", RUN + ["-m", "fid", "--inception-weights", "nowhere.pth"], ["busi"], "nowhere.pth", False),
    ("run-fid-without-weights", RUN + ["-m", "fid"], ["busi"], "inception", False),
    ("eval-fid-without-weights", EVAL + ["-m", "fid"], ["busi", "gen"], "inception", False),
    ("run-lpips-without-weights", RUN + ["-m", "lpips-diversity"], ["busi"], "alexnet", False),
    ("utility-bad-model", ["utility", "--real", "busi", "--synthetic", "gen", "--model", "vgg"], ["busi", "gen"], "vgg", False),
    ("study-export-bad-format", ["study", "export", "nowhere", "--format", "xls", "--out", "r.csv"], [], "nowhere", False),
    # --- numbers, before any work ---
    ("gen-n-zero", GEN + ["--n", "0"], ["busi"], "--n", True),
    ("gen-n-negative", GEN + ["--n", "-5"], ["busi"], "--n", True),
    ("run-n-zero", RUN[:-4] + ["--n", "0", "--out", "out"], ["busi"], "--n", False),
    ("run-n-negative", RUN[:-4] + ["--n", "-5", "--out", "out"], ["busi"], "--n", False),
    ("run-n-huge", RUN[:-4] + ["--n", "1000000000000", "--out", "out"], ["busi"], "--n", True),
    ("gen-n-huge", GEN + ["--n", "1000000000000"], ["busi"], "--n", False),
    ("gen-image-size-7", GEN + ["--image-size", "7"], ["busi"], "--image-size", True),
    ("run-image-size-7", RUN + ["--image-size", "7"], ["busi"], "--image-size", False),
    ("eval-image-size-7", EVAL + ["--image-size", "7"], ["busi", "gen"], "--image-size", False),
    ("run-bootstrap-negative", RUN + ["--bootstrap", "-1"], ["busi"], "--bootstrap", False),
    ("eval-bootstrap-negative", EVAL + ["--bootstrap", "-1"], ["busi", "gen"], "--bootstrap", False),
    ("run-seed-negative", RUN + ["--seed", "-1"], ["busi"], "--seed", False),
    ("gen-seed-negative", GEN + ["--n", "4", "--seed", "-1"], ["busi"], "--seed", False),
    ("make-phantom-n-zero", ["data", "make-phantom", "--out", "ph", "--n", "0"], [], "--n", False),
    ("make-phantom-size-7", ["data", "make-phantom", "--out", "ph", "--n", "3", "--size", "7"], [], "--size", False),
    ("study-create-prevalence", ["study", "create", "--reference", "busi", "--run", "gen", "--out", "st", "--prevalence", "1.5"],
     ["busi", "gen"], "--prevalence", False),
    ("segmenter-width-1", ["segmenter", "train", "--data", "busi", "--width", "1", "--out", "seg"], ["busi"], "--width", False),
    ("segmenter-epochs-zero", ["segmenter", "train", "--data", "busi", "--epochs", "0", "--out", "seg"], ["busi"], "--epochs", False),
    ("utility-seeds-zero", ["utility", "--real", "busi", "--synthetic", "gen", "--seeds", "0"], ["busi", "gen"], "--seeds", False),
    # --- configuration files ---
    ("run-config-missing", RUN + ["--config", "nowhere.toml"], ["busi"], "nowhere.toml", False),
    ("run-config-syntax", RUN + ["--config", "bad.toml"], ["busi", "tomls"], "bad.toml", False),
    ("run-config-unknown-key", RUN + ["--config", "unknown.toml"], ["busi", "tomls"], "nn", False),
    ("run-config-bad-type", RUN + ["--config", "badtype.toml"], ["busi", "tomls"], "n", False),
    ("run-config-unknown-table", RUN + ["--config", "badtable.toml"], ["busi", "tomls"], "runs", False),
    ("gen-config-syntax", GEN + ["--n", "4", "--config", "bad.toml"], ["busi", "tomls"], "bad.toml", False),
    ("run-config-n-zero", RUN[:-4] + ["--out", "out", "--config", "badn.toml"], ["busi", "tomls"], "n", False),
    # --- outputs: never over what the user made ---
    ("leaderboard-user-csv", ["leaderboard", "results", "--out", "mine.csv"], ["user_csv"], "--force", True),
    ("leaderboard-user-md", ["leaderboard", "results", "--out", "mine.csv"], ["user_md"], "--force", True),
    ("leaderboard-user-html", ["leaderboard", "results", "--out", "mine.csv"], ["user_html"], "--force", True),
    ("run-out-user-report", RUN, ["user_report"], "--force", True),
    ("run-out-user-leaderboard", RUN, ["user_lbcsv"], "--force", True),
    ("leaderboard-out-folder", ["leaderboard", "results", "--out", "mine"], ["runs", "mine"], "mine", False),
    ("leaderboard-missing-dir", ["leaderboard", "nowhere", "--out", "x.csv"], [], "nowhere", False),
    ("leaderboard-no-runs", ["leaderboard", "empty", "--out", "x.csv"], ["empty"], "runs", False),
    ("run-out-file", RUN[:-1] + ["afile"], ["busi", "afile"], "afile", False),
    ("gen-out-file", GEN[:-1] + ["afile", "--n", "4"], ["busi", "afile"], "afile", False),
    ("gen-out-nonempty", GEN[:-1] + ["mine", "--n", "4"], ["busi", "mine"], "mine", False),
    ("make-phantom-out-nonempty", ["data", "make-phantom", "--out", "mine", "--n", "3"], ["mine"], "mine", False),
    ("make-phantom-out-file", ["data", "make-phantom", "--out", "afile", "--n", "3"], ["afile"], "afile", False),
    ("study-create-out-nonempty", ["study", "create", "--reference", "busi", "--run", "gen", "--out", "mine"],
     ["busi", "gen", "mine"], "mine", False),
    ("export-out-user-file", ["study", "export", "nowhere", "--out", "afile"], ["afile"], "nowhere", False),
]
BROKE_IN_0_1 = {c[0] for c in CASES if c[4]}


# ---------------------------------------------------------------------------------------------
# running


def _snapshot(d: Path) -> dict[str, str]:
    """Every file and folder under ``d`` with its content hash: 'nothing left, nothing changed'."""
    out = {}
    for p in sorted(d.rglob("*")):
        rel = str(p.relative_to(d))
        if rel == "home" or rel.startswith(("home/", "_io/")) or rel == "_io":
            continue  # the case's HOME is checked on its own: caches of a refused command must not be written either
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _env(case_dir: Path) -> dict[str, str]:
    home = case_dir / "home"
    return {"HOME": str(home), "USBENCH_CACHE": str(home / ".cache" / "usbench"), "TORCH_HOME": str(home / "torch"),
            "HF_HOME": str(home / "hf"), "XDG_CACHE_HOME": str(home / ".cache"), "USBENCH_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "COLUMNS": "100"}


class Runner:
    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                   OMP_NUM_THREADS="1", MPLBACKEND="Agg")
        self.proc = subprocess.Popen([PY, str(ROOT / "tests" / "_cli_runner.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)

    def run(self, argv: list[str], cwd: Path) -> tuple[int, str, str]:
        io_dir = cwd / "_io"
        io_dir.mkdir(exist_ok=True)
        case = {"argv": argv, "cwd": str(cwd), "env": _env(cwd), "stdout": str(io_dir / "out"), "stderr": str(io_dir / "err"),
                "timeout": 20}
        self.proc.stdin.write(json.dumps(case) + "\n")
        self.proc.stdin.flush()
        rc = json.loads(self.proc.stdout.readline())["rc"]
        return rc, (io_dir / "out").read_text(), (io_dir / "err").read_text()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def cli():
    r = Runner()
    yield r
    r.close()


def check_contract(rc: int, stderr: str, before: dict, after: dict, home: Path, word: str | None,
                   work_started: bool = False) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert rc == 2, f"exit {rc}, stderr: {stderr!r}"
    assert len(lines) == 1, f"{len(lines)} stderr lines: {stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    if word:
        assert word.lower() in lines[0].lower(), f"{word!r} not in {lines[0]!r}"
    assert after == before, f"the folder changed: {sorted(set(after.items()) ^ set(before.items()))[:6]}"
    left = [p for p in home.rglob("*") if p.is_file()] if home.exists() else []
    if work_started:  # a command that failed mid-work may keep complete cache entries (the duplicate index)
        left = [p for p in left if not _complete_cache_file(p, home)]
    assert not left, f"a refused command wrote {[str(p.relative_to(home)) for p in left][:5]}"


def _complete_cache_file(p: Path, home: Path) -> bool:
    """A SQLite file of usbench's cache that passes its integrity check: a finished entry, not a partial output."""
    import sqlite3

    if not str(p.relative_to(home)).startswith(".cache/usbench/") or p.suffix not in (".sqlite", ".sqlite-wal", ".sqlite-shm"):
        return False
    if p.suffix != ".sqlite":
        return True
    con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()


@pytest.mark.parametrize("case_id,argv,setups,word", [c[:4] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_keeps_the_contract(cli, tmp_path, case_id, argv, setups, word):
    for s in setups:
        SETUPS[s](tmp_path)
    before = _snapshot(tmp_path)
    rc, _out, err = cli.run(argv, tmp_path)
    check_contract(rc, err, before, _snapshot(tmp_path), tmp_path / "home", word)
    check_hinted_flags(argv, err)


def check_hinted_flags(argv: list[str], message: str) -> None:
    """Every --flag an error message tells the user to use is a flag of the command that printed it."""
    path, flags = _flags_of(argv)
    typed = {a.split("=")[0] for a in argv if a.startswith("--")}  # echoing a flag the user typed is fine
    wrong = [f for f in hinted_flags(message) if f not in flags and f not in typed]
    assert not wrong, f"`usbench {' '.join(path)}` has no {wrong} (message: {message.strip()!r})"


def test_table_covers_the_issue():
    """The issue tried 82 bad inputs, 23 of which broke the contract; all of its rows are here."""
    assert len(CASES) >= 82 - 6  # the other six rows (Ctrl-C, read-only cache, disk full) are tests below
    assert len(BROKE_IN_0_1) >= 23 - 6
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case_id", ["gen-n-abc", "run-kid-typo", "leaderboard-user-csv"])
def test_runner_equals_a_plain_subprocess(cli, tmp_path, case_id):
    """The forked runner and `python -m usbench` give the same exit code and stderr."""
    argv, setups = next((c[1], c[2]) for c in CASES if c[0] == case_id)
    results = []
    for sub in ("forked", "plain"):
        d = tmp_path / sub
        d.mkdir()
        for s in setups:
            SETUPS[s](d)
        if sub == "forked":
            rc, _o, err = cli.run(argv, d)
        else:
            p = subprocess.run([PY, "-m", "usbench", *argv], cwd=d, capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, **_env(d), PYTHONPATH=str(ROOT)))
            rc, err = p.returncode, p.stderr
        results.append((rc, err.replace(str(d), "<d>")))
    assert results[0] == results[1]


# ---------------------------------------------------------------------------------------------
# filesystems: read-only, full (real small filesystems; mounting needs root)


@contextlib.contextmanager
def _tmpfs(path: Path, size: str, readonly: bool = False):
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if readonly else "")
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root and mount(8); the disk-full and read-only cases need a real filesystem")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({p.stderr.strip()}); the disk-full and read-only cases need one")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_read_only_cache(cli, tmp_path):
    make_busi(tmp_path)
    make_gen(tmp_path)
    with _tmpfs(tmp_path / "ro", "64k", readonly=True):
        before = _snapshot(tmp_path)
        rc, _o, err = cli.run(EVAL + ["--cache", "ro/features"], tmp_path)
        check_contract(rc, err, before, _snapshot(tmp_path), tmp_path / "home", "read-only")


def test_read_only_out(cli, tmp_path):
    make_busi(tmp_path)
    with _tmpfs(tmp_path / "ro", "64k", readonly=True):
        before = _snapshot(tmp_path)
        rc, _o, err = cli.run(GEN[:-1] + ["ro/set", "--n", "4"], tmp_path)
        check_contract(rc, err, before, _snapshot(tmp_path), tmp_path / "home", "read-only")


@pytest.mark.parametrize("argv", [
    GEN[:-1] + ["full/set", "--n", "60", "--image-size", "64"],
    ["data", "make-phantom", "--out", "full/ph", "--n", "60", "--size", "64"],
], ids=["generate", "make-phantom"])
def test_disk_full(cli, tmp_path, argv):
    """A 96 kB filesystem fills after a few images: one line, and no partial file or folder left."""
    make_busi(tmp_path)
    with _tmpfs(tmp_path / "full", "96k"):
        before = _snapshot(tmp_path)
        rc, _o, err = cli.run(argv, tmp_path)
        after = _snapshot(tmp_path)
        check_contract(rc, err, before, after, tmp_path / "home", "no space", work_started=True)


def test_disk_full_run(cli, tmp_path):
    """`usbench run` into a full disk: what it wrote is removed, the message says so."""
    make_busi(tmp_path)
    with _tmpfs(tmp_path / "full", "200k"):
        before = _snapshot(tmp_path)
        rc, _o, err = cli.run(RUN[:-1] + ["full/out", "--image-size", "64", "--n", "30", "-m", "frd"], tmp_path)
        check_contract(rc, err, before, _snapshot(tmp_path), tmp_path / "home", "no space", work_started=True)


# ---------------------------------------------------------------------------------------------
# Ctrl-C: exit 130 and a line that says how to go on, from a plain `python -m usbench`


def test_ctrl_c_during_run_exits_130(tmp_path):
    make_busi(tmp_path)
    env = dict(os.environ, **_env(tmp_path), PYTHONPATH=str(ROOT))
    p = subprocess.Popen([PY, "-m", "usbench", *RUN[:-4], "--n", "400", "--image-size", "64", "--out", "out"],
                         cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    images = tmp_path / "out" / "runs"
    while time.time() < deadline and not any(images.glob("*/images/*.png")):
        time.sleep(0.2)  # interrupt in the middle of generation, as a user would
    assert p.poll() is None, p.communicate()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, (p.returncode, err)
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "interrupted; rerun the same command to resume"
    assert out == ""


# ---------------------------------------------------------------------------------------------
# --help reads right, and every flag a message names exists


def _commands():
    from typer.main import get_command

    from usbench.cli import app

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in sorted(subs.items()):
                yield from walk(sub, path + [name])
        else:
            yield path, cmd

    return list(walk(get_command(app), []))


def _help(path: list[str], cmd) -> str:
    from typer._click.core import Context

    ctx = Context(cmd, info_name="usbench " + " ".join(path), terminal_width=100)
    return cmd.get_help(ctx)


def _squash(text: str) -> str:
    return "".join(text.split())


def test_every_help_shows_its_text_and_defaults():
    """No markup eats text ('TOML with a  table.'), no empty brackets, every option says its default."""
    problems = []
    for path, cmd in _commands():
        text = _help(path, cmd)
        flat = _squash(text)
        name = " ".join(path)
        if "[]" in flat or "()" in flat:
            problems.append(f"{name}: empty brackets")
        if "Example" not in text:
            problems.append(f"{name}: no example")
        for p in cmd.params:
            if p.name == "help" or not getattr(p, "opts", None):
                continue
            helptext = getattr(p, "help", None) or ""
            if p.param_type_name == "option" and not helptext:
                problems.append(f"{name} {p.opts[0]}: no help text")
            if helptext and _squash(helptext) not in flat:
                problems.append(f"{name} {p.opts[0]}: help text not shown as written")
            if getattr(p, "required", False) or getattr(p, "is_flag", False) and p.default is False:
                continue
            default = p.default
            if default is None or default == [] or default == ():
                if "default" not in helptext.lower():
                    problems.append(f"{name} {p.opts[0]}: the default is not said")
            elif f"[default:{_squash(str(default))}]" not in flat and "default" not in helptext.lower():
                problems.append(f"{name} {p.opts[0]}: default {default!r} not shown")
    assert not problems, problems


def _flags_of(argv: list[str]) -> tuple[list[str], set[str]]:
    """The command an argv runs, and the flags it has."""
    cmds = {tuple(p): c for p, c in _commands()}
    for k in range(len(argv), 0, -1):
        if tuple(argv[:k]) in cmds:
            cmd = cmds[tuple(argv[:k])]
            return argv[:k], {o for p in cmd.params for o in (*p.opts, *getattr(p, "secondary_opts", ())) if o.startswith("--")}
    return [], set()


def hinted_flags(message: str) -> list[str]:
    """The --flags a message tells the user to use (those inside `usbench other-command ...` excepted)."""
    import re

    message = re.sub(r"`[^`]*`", "", message)  # another command's own flags
    message = re.sub(r"\(see usbench [^)]*--help\)", "", message)
    return re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", message)


# ---------------------------------------------------------------------------------------------
# what usbench writes: the user's umask, its own files only, --force


def test_outputs_follow_the_umask_not_mkstemp(tmp_path):
    from usbench import outputs

    old = os.umask(0o022)
    try:
        outputs.atomic_write_text(tmp_path / "a.csv", "x\n")
        os.umask(0o002)  # a group-shared folder: the group may write too
        outputs.atomic_write_text(tmp_path / "b.csv", "y\n")
    finally:
        os.umask(old)
    assert (tmp_path / "a.csv").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.csv").stat().st_mode & 0o777 == 0o664
    assert not list(tmp_path.glob(".*.tmp"))


def test_claim_refuses_the_users_file_until_force(tmp_path):
    from usbench import outputs
    from usbench.errors import OutputError

    outputs.atomic_write_text(tmp_path / "report.html", "<p>usbench's</p>")
    outputs.record(tmp_path, [tmp_path / "report.html"])
    outputs.claim(tmp_path, ["report.html", "figures/"])  # its own file: fine
    (tmp_path / "report.html").write_text("<p>edited by the user</p>")
    with pytest.raises(OutputError, match="--force"):
        outputs.claim(tmp_path, ["report.html"])
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "mine.png").write_bytes(b"png")
    with pytest.raises(OutputError, match="mine.png"):
        outputs.claim(tmp_path, ["figures/"])
    outputs.claim(tmp_path, ["report.html", "figures/"], force=True)


def test_leaderboard_force_overwrites_and_then_owns(cli, tmp_path):
    make_user_leaderboard(tmp_path, ".csv")
    rc, out, err = cli.run(["leaderboard", "results", "--out", "mine.csv", "--force"], tmp_path)
    assert rc == 0, err
    assert (tmp_path / "mine.csv").read_text().startswith("run_id,generator,subset,")
    assert "phantom" in out and "frd ↓" in out and "1.5 [1, 2]" in out  # the table, intervals on one line
    assert "wrote" not in out  # stdout holds the result only; the note goes to stderr
    rc, _out, err = cli.run(["leaderboard", "results", "--out", "mine.csv"], tmp_path)
    assert rc == 0, err  # now usbench's own file: rewritten without --force


def test_printed_table_tells_runs_apart_and_marks_the_best(tmp_path):
    """Two runs of one generator with different --n are two named rows; the lower frd is marked."""
    from usbench import leaderboard

    make_runs(tmp_path)
    src = tmp_path / "results" / "runs" / "phantom-0123456789"
    dst = tmp_path / "results" / "runs" / "phantom-9999999999"
    shutil.copytree(src, dst)
    info = json.loads((dst / "run.json").read_text())
    info.update(run_id=dst.name, n=40)
    (dst / "run.json").write_text(json.dumps(info))
    store = json.loads((dst / "metrics.json").read_text())
    res = store["entries"]["k1"]["results"][0]
    res.update(value=0.5, ci_low=0.25, ci_high=0.75, n_generated=40)
    (dst / "metrics.json").write_text(json.dumps(store))
    rows = leaderboard.rows_from_runs(tmp_path / "results")
    text = leaderboard.to_rich(rows)
    lines = [l for l in text.splitlines() if l.startswith("phantom")]
    assert len(lines) == 2 and {"phantom (n=20)", "phantom (n=40)"} == {l.split("  ")[0].strip() for l in lines}
    assert "frd ↓" in text
    best = next(l for l in lines if "(n=40)" in l)
    assert "0.5 [0.25, 0.75]*" in best and "*" not in next(l for l in lines if "(n=20)" in l)
    assert all(len(l) < 120 for l in text.splitlines())  # one line per row, intervals on it


def test_report_says_each_skip_reason_once_and_the_table_scrolls_in_its_box():
    from usbench import leaderboard

    reason = "Inception v3 weights not found: weights-inception-2015-12-05-6726825d.pth"
    rows = [{"run_id": f"g{i}-1", "generator": f"g{i}", "subset": "all", "n_generated": 10, "frd": float(i),
             "skipped": f"fid: {reason}; kid: {reason}"} for i in range(5)]
    assert leaderboard.skip_reasons(rows) == {reason: ["fid", "kid"]}
    html_table = leaderboard.to_html(rows)
    assert html_table.startswith("<div class=lb>") and "overflow-x:auto" in leaderboard.TABLE_CSS
    assert "white-space:nowrap" in leaderboard.TABLE_CSS  # an interval never wraps over three lines
