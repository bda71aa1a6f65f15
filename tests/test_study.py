"""Reader study: blinding, store, analysis (against sklearn/scipy/statsmodels and published examples),
exports, and bad input through the CLI."""

import io
import math
import sqlite3
import struct
import tomllib

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats
from sklearn.metrics import roc_auc_score

from _study_fixtures import make_inputs, make_study, simulate_ratings
from usbench.cli import main
from usbench.errors import InputError
from usbench.reader_study import agreement as agr
from usbench.reader_study import analysis as A
from usbench.reader_study import export as E
from usbench.reader_study import mrmc as M
from usbench.reader_study.builder import encode_for_study, open_store, read_key
from usbench.reader_study.store import RatingsStore, SequenceItem


@pytest.fixture(scope="module")
def rated_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rated")
    study, links = make_study(tmp, readers=("alice", "bob", "carol"), n_per_source=8, practice=2, repeats=4, washout=5)
    simulate_ratings(study)
    return study, links


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, i = [], 8
    while i < len(data):
        n = struct.unpack(">I", data[i:i + 4])[0]
        out.append((data[i + 4:i + 8], data[i + 8:i + 8 + n]))
        i += 12 + n
    return out


# --------------------------------------------------------------------------------------------
# Blinding


def test_images_are_blinded(rated_study):
    study, _ = rated_study
    key = {r["image_id"]: r for r in read_key(study)}
    files = sorted((study / "images").glob("*.png"))
    assert {f.stem for f in files} == set(key)
    headers = set()
    for f in files:
        data = f.read_bytes()
        chunks = _png_chunks(data)
        kinds = [k for k, _ in chunks]
        # nothing but header, pixels and end: no text, time, physical size or gamma chunks
        assert set(kinds) == {b"IHDR", b"IDAT", b"IEND"}, kinds
        headers.add(chunks[0][1])  # width, height, bit depth, colour type, compression, filter, interlace
        with Image.open(f) as im:
            assert im.mode == "L" and im.size == (64, 64) and not im.info
            pixels = np.asarray(im)
        # same encoder and parameters for every source: re-encoding the pixels gives the same bytes
        assert encode_for_study(pixels, 64) == data
        assert len(f.stem) == 12 and key[f.stem]["original_id"] not in f.name
    assert len(headers) == 1  # identical size, bit depth, colour type across real and synthetic
    w, h, depth, colour = struct.unpack(">IIBB", next(iter(headers))[:10])
    assert (w, h, depth, colour) == (64, 64, 8, 0)
    # the real inputs were 120x90 and the synthetic 64x64: the real ones were square-cropped
    real_file = next(r for r in key.values() if r["source"] == "real")["original_file"]
    assert Image.open(real_file).size == (120, 90)
    # nothing reader-facing names a source
    text = (study / "study.toml").read_text()
    assert not any(i in text for i in key)


def test_order_uncorrelated_with_source(tmp_path):
    # 40 readers: each order must be its own permutation, and position must not track the source.
    study, _ = make_study(tmp_path, readers=[f"r{i}" for i in range(40)], n_per_source=8)
    key = {r["image_id"]: r["truth"] for r in read_key(study)}
    with open_store(study) as s:
        orders = {r: [it.image_id for it in s.sequence(r) if it.block == "main"] for r in s.readers()}
    assert len({tuple(o) for o in orders.values()}) == len(orders)
    rhos = [stats.spearmanr(np.arange(len(o)), [key[i] for i in o])[0] for o in orders.values()]
    # each rho has sd ~ 1/sqrt(31) = 0.18 under independence; the mean of 40 has sd ~ 0.03.
    # An order sorted (or blocked) by source would give |rho| ~ 0.87.
    assert abs(np.mean(rhos)) < 0.15
    # the key and the image folder are listed by random id, not by source
    ids = [r["image_id"] for r in read_key(study)]
    assert ids == sorted(ids)


def test_practice_and_repeats_in_sequence(rated_study):
    study, _ = rated_study
    key = {r["image_id"]: r for r in read_key(study)}
    cfg = tomllib.loads((study / "study.toml").read_text())["study"]
    ends = []
    for reader in ("alice", "bob", "carol"):
        with open_store(study) as s:
            seq = s.sequence(reader)
        blocks = [it.block for it in seq]
        assert blocks[:2] == ["practice"] * 2 and blocks.count("repeat") == 4
        main_pos = {it.image_id: it.position for it in seq if it.block == "main"}
        for it in seq:
            if it.block == "repeat":
                orig = key[it.image_id]["repeat_of"]
                # a fresh id (its own file with the same pixels), shown after a washout of >= washout items
                assert orig in main_pos and it.image_id != orig and it.item != orig
                assert (study / "images" / f"{it.image_id}.png").read_bytes() == (study / "images" / f"{orig}.png").read_bytes()
                assert it.position - main_pos[orig] - 1 >= cfg["washout"]
        ends.append(blocks[-4:] == ["repeat"] * 4)
        assert not ({it.image_id for it in seq if it.block == "practice"} & set(main_pos))
    assert not all(ends)  # interleaved, not parked at the end
    assert cfg["n_real"] == cfg["n_synthetic"] == 16 and cfg["seed"] == 3


def test_key_is_private(rated_study):
    study, _ = rated_study
    assert (study / "admin" / "key.csv").stat().st_mode & 0o077 == 0
    assert (study / "admin" / "links.txt").stat().st_mode & 0o077 == 0
    assert (study / "admin").stat().st_mode & 0o077 == 0


# --------------------------------------------------------------------------------------------
# Store


def _tiny_store(tmp_path) -> RatingsStore:
    s = RatingsStore(tmp_path / "r.sqlite", create=True)
    s.add_reader("ann", "tok-ann")
    s.add_reader("ben", "tok-ben")
    s.set_sequence("ann", [SequenceItem(i, f"i{i}", f"i{i}", "main") for i in range(3)])
    s.set_sequence("ben", [SequenceItem(0, "j0", "j0", "main")])
    return s


def test_store_idempotent_unique_and_timed(tmp_path):
    s = _tiny_store(tmp_path)
    assert s.mark_shown("ann", "i0", now=100.0) == 100.0
    assert s.mark_shown("ann", "i0", now=103.0) == 100.0  # a refresh keeps the first showing
    assert s.rate("ann", "i0", 4, now=107.5) is True
    assert s.rate("ann", "i0", 4, now=109.0) is False  # resubmission: nothing changes
    r = s.ratings_of("ann")["i0"]
    assert (r["rating"], r["seconds"], r["revisions"]) == (4, 7.5, 0)
    assert s.rate("ann", "i0", 2, allow_change=False) is False and s.ratings_of("ann")["i0"]["rating"] == 4
    assert s.rate("ann", "i0", 2, allow_change=True) is True and s.ratings_of("ann")["i0"]["revisions"] == 1
    assert s.next_position("ann") == 1
    with pytest.raises(sqlite3.IntegrityError):
        s.conn.execute("INSERT INTO ratings(reader,item,image_id,rating,rated_at) VALUES ('ann','i0','i0',3,1)")
    with pytest.raises(InputError, match="not in the sequence"):
        s.rate("ann", "j0", 3)  # another reader's item
    with pytest.raises(InputError, match="outside 1..5"):
        s.rate("ann", "i1", 6)
    assert s.reader_for_token("tok-ben") == ("ben", False) and s.reader_for_token("tok-x") is None
    assert "tok-ann" not in (tmp_path / "r.sqlite").read_bytes().decode("latin-1")  # only hashes stored
    assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    s.close()
    # a study created with fsync_each_rating keeps it: every later connection uses synchronous=FULL
    RatingsStore(tmp_path / "f.sqlite", create=True, fsync_each_rating=True).close()
    with RatingsStore(tmp_path / "f.sqlite") as f:
        assert f.fsync_each_rating and f.conn.execute("PRAGMA synchronous").fetchone()[0] == 2


# --------------------------------------------------------------------------------------------
# Statistics


def test_detection_stats_against_sklearn_and_exact_binomial():
    rng = np.random.default_rng(5)
    truth = np.repeat([0, 1], 20)
    ratings = np.clip(np.round(3 + (truth - 0.5) * 2 + rng.normal(0, 1.2, 40)), 1, 5).astype(int)
    s = A.detection_stats(ratings, truth)
    assert s["auc"] == pytest.approx(roc_auc_score(truth, ratings))
    syn_call = np.where(ratings >= 4, 1.0, np.where(ratings == 3, 0.5, 0.0))
    assert s["sensitivity"] == pytest.approx(syn_call[truth == 1].mean())
    assert s["specificity"] == pytest.approx(1 - syn_call[truth == 0].mean())
    decisive = ratings != 3
    correct = ((ratings >= 4) == (truth == 1))[decisive]
    k, n = int(correct.sum()), int(decisive.sum())
    assert (s["binomial_k"], s["binomial_n"]) == (k, n)
    assert s["binomial_p"] == pytest.approx(sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n)
    assert s["auc_ci_low"] < s["auc"] < s["auc_ci_high"]


def test_agreement_against_published_examples():
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories -> kappa = 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    m = pd.DataFrame(np.array([sum([[k + 1] * c for k, c in enumerate(row)], []) for row in table]).T)
    assert round(agr.fleiss_kappa(m), 3) == 0.210
    # Krippendorff's worked example (krippendorff package README): nominal 0.691, interval 0.811
    rows = ["* * * * * 3 4 1 2 1 1 3 3 * 3", "1 * 2 1 3 3 4 3 * * * * * * *", "* * 2 1 3 4 4 * 2 1 1 3 3 * 4"]
    km = pd.DataFrame([[np.nan if v == "*" else float(v) for v in r.split()] for r in rows])
    assert round(agr.krippendorff_alpha(km, "nominal"), 3) == 0.691
    assert round(agr.krippendorff_alpha(km, "interval"), 3) == 0.811


def test_weighted_kappa_by_hand():
    a = np.array([1, 2, 3, 4, 5, 5, 2, 3, 1, 4])
    b = np.array([1, 3, 3, 5, 4, 5, 1, 3, 2, 2])
    m = pd.DataFrame([a, b], index=["a", "b"])
    got = agr.pairwise_weighted_kappa(m)[0]["kappa"]
    obs = np.zeros((5, 5))
    for x, y in zip(a, b):
        obs[x - 1, y - 1] += 1
    obs /= obs.sum()
    exp = np.outer(obs.sum(1), obs.sum(0))
    w = np.subtract.outer(np.arange(5), np.arange(5)) ** 2
    assert got == pytest.approx(1 - (w * obs).sum() / (w * exp).sum())


def test_analysis_of_a_study(rated_study):
    study, _ = rated_study
    res = A.analyze(study, n_boot=300)
    key = {r["image_id"]: r for r in read_key(study)}
    long = A.load_long(study)
    main_rows = long[long["block"] == "main"]
    assert res["n_readers"] == 3 and res["n_cases"] == 32 and res["n_practice_ratings_excluded"] == 6
    # no pooled row treating 3 x 32 correlated ratings as independent; all generators together is
    # the mean of the readers' AUCs, with a Hillis interval (readers and cases random)
    assert "pooled" not in res
    all_g = res["all_generators"]
    assert all_g["reader_auc"] == pytest.approx(np.mean([roc_auc_score(g["truth"], g["rating"]) for _, g in main_rows.groupby("reader")]))
    assert all_g["reader_auc_ci_low"] < all_g["reader_auc"] < all_g["reader_auc_ci_high"]
    for g, s in res["per_generator"].items():
        aucs, fooled = [], []
        for reader, rows in main_rows.groupby("reader"):
            sub = rows[(rows["generator"] == g) | (rows["source"] == "real")]
            aucs.append(roc_auc_score(sub["truth"], sub["rating"]))
            syn = rows[rows["generator"] == g]["rating"]
            fooled.append(((syn <= 2) + 0.5 * (syn == 3)).mean())
        assert s["reader_auc"] == pytest.approx(np.mean(aucs))
        assert s["fool_rate"] == pytest.approx(np.mean(fooled))
        for lab, value in s["fool_rate_per_label"].items():
            per_reader = [((x <= 2) + 0.5 * (x == 3)).mean() for _, x in
                          main_rows[(main_rows["generator"] == g) & (main_rows["label"] == lab)].groupby("reader")["rating"]]
            assert value == pytest.approx(np.mean(per_reader))
        assert s["fool_rate_ci_low"] <= s["fool_rate"] <= s["fool_rate_ci_high"]
        assert s["reader_auc_ci_low"] <= s["reader_auc"] <= s["reader_auc_ci_high"]
        assert s["n_cases"] == 16 + 8 and s["n_readers"] == 3
    # the MRMC comparison of generators equals the stand-alone MRMC on the exported table
    mr = M.mrmc(A.mrmc_table(main_rows), cov="delong")
    assert res["mrmc"]["random_readers_random_cases"]["F"] == pytest.approx(mr.obuchowski_rockette["random_readers_random_cases"]["F"])
    assert len(res["intra_reader"]) == 3 and all(r["n"] == 4 for r in res["intra_reader"])
    # leaderboard columns
    cols = A.leaderboard_columns(study)
    assert set(cols) == {"gen0-run", "gen1-run"}
    assert set(cols["gen0-run"]) == {"reader_fool_rate", "reader_fool_rate_ci_low", "reader_fool_rate_ci_high", "reader_auc",
                                     "reader_auc_ci_low", "reader_auc_ci_high", "reader_n_readers", "reader_n_cases"}
    assert all(k["generator"] in ("real", "gen0-run", "gen1-run") for k in key.values())


def test_spearman_and_scatter(tmp_path):
    rows = [{"run_id": f"g{i}", "fid": f, "reader_fool_rate": h, "reader_fool_rate_ci_low": h - 0.1, "reader_fool_rate_ci_high": h + 0.1}
            for i, (f, h) in enumerate([(10, 0.4), (20, 0.3), (30, 0.35), (40, 0.1), (50, 0.05)])]
    out = A.spearman_vs_metrics(rows, ["fid", "missing"])
    rho, p = stats.spearmanr([10, 20, 30, 40, 50], [0.4, 0.3, 0.35, 0.1, 0.05])
    assert out[0]["rho"] == pytest.approx(rho) and out[0]["p"] == pytest.approx(p) and out[0]["n"] == 5
    assert out[1]["n"] == 0 and math.isnan(out[1]["rho"])
    png = A.scatter_metric_vs_human(rows, "fid", tmp_path / "s.png")
    assert Image.open(png).size[0] > 100


# --------------------------------------------------------------------------------------------
# Exports and CLI


def test_exports(rated_study, tmp_path, capsys):
    study, _ = rated_study
    long = pd.read_csv(io.StringIO(E.long_csv(study)))
    assert list(long.columns[:9]) == ["reader", "case", "source", "generator", "label", "rating", "seconds", "order", "timestamp"]
    with open_store(study) as s:
        n_ratings = s.conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]
    assert len(long) == n_ratings
    # MRMCaov / RJafroc CSV: integer case ids; usbench study mrmc reads it back
    assert main(["study", "export", str(study), "--format", "mrmcaov", "--out", str(tmp_path / "m.csv")]) == 0
    m = pd.read_csv(tmp_path / "m.csv")
    assert list(m.columns) == ["reader", "treatment", "case", "truth", "rating"] and m["case"].dtype.kind == "i"
    res = A.analyze(study, n_boot=50)
    theta = M.auc_matrix(M.prepare(m)).mean(axis=1)
    assert theta.tolist() == pytest.approx([res["per_generator"][g]["reader_auc"] for g in sorted(res["per_generator"])])
    assert main(["study", "mrmc", str(tmp_path / "m.csv"), "--cov", "delong"]) == 0
    # iMRMC: header counts, truth rows, one score row per reader, modality and case
    text = E.imrmc_text(study)
    head, data = text.split("BEGIN DATA:\n")
    fields = dict(line.split(": ") for line in head.splitlines() if ": " in line)
    assert (fields["NR"], fields["N0"], fields["N1"], fields["NM"]) == ("3", "16", "16", "2")
    rows = [r.split(",") for r in data.strip().splitlines()]
    truth_rows = [r for r in rows if r[0] == "-1"]
    assert len(truth_rows) == 32 and all(r[2] == "0" and r[3] in "01" for r in truth_rows)
    assert len(rows) - len(truth_rows) == 3 * 2 * (16 + 8)


def _err(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def test_cli_create_and_analyze(tmp_path, capsys):
    real, runs = make_inputs(tmp_path)
    out = tmp_path / "s"
    args = ["study", "create", "--reference", str(real), "--out", str(out), "--readers", "ann,bob", "--n-per-source", "4", "--size", "32"]
    for r in runs:
        args += ["--run", str(r)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.count("?token=") == 3
    simulate_ratings(out)
    assert main(["study", "analyze", str(out), "--boot", "50"]) == 0
    assert (out / "analysis.json").is_file() and (out / "analysis.md").is_file() and (out / "analysis_generators.png").is_file()
    assert "gen0-run" in capsys.readouterr().out
    # a study is never overwritten
    assert main(args) == 2 and "not empty" in _err(capsys)


def _write(tmp_path, df, name="r.csv"):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return str(p)


def test_cli_bad_input(rated_study, tmp_path, capsys):
    import shutil

    study, links = rated_study
    assert main(["study", "progress", str(study), "--token", "nope"]) == 2
    assert "unknown token" in _err(capsys)
    assert main(["study", "progress", str(study), "--token", links.reader_tokens["bob"]]) == 0
    assert capsys.readouterr().out.startswith("bob\t")
    no_key = tmp_path / "nokey"
    shutil.copytree(study, no_key)
    (no_key / "admin" / "key.csv").unlink()
    assert main(["study", "analyze", str(no_key)]) == 2 and "key.csv" in _err(capsys)
    no_db = tmp_path / "nodb"
    shutil.copytree(study, no_db)
    (no_db / "ratings.sqlite").unlink()
    assert main(["study", "analyze", str(no_db)]) == 2 and "ratings.sqlite" in _err(capsys)
    assert main(["study", "serve", str(no_db)]) == 2 and "ratings.sqlite" in _err(capsys)

    rng = np.random.default_rng(0)
    good = pd.DataFrame([{"reader": r, "treatment": t, "case": c, "truth": c % 2, "rating": int(rng.integers(1, 6))}
                         for r in (1, 2) for t in (1, 2) for c in range(1, 7)])
    assert main(["study", "mrmc", _write(tmp_path, good), "--json", "--cov", "unbiased"]) == 0
    import json

    printed = json.loads(capsys.readouterr().out)
    assert printed["cov"] == "unbiased" and printed["readers"] == ["1", "2"] and printed["n_cases"] == 6
    cases = [
        (good.drop(columns=["rating"]), "lacks the column(s) rating"),
        (good[good.reader == 1], "single reader"),
        (good[good.treatment == 1], "single treatment"),
        (pd.concat([good, good.iloc[[0]]]), "rated twice"),
        (good[good.case > 4], "1 positive and 1 negative"),
    ]
    for df, message in cases:
        assert main(["study", "mrmc", _write(tmp_path, df)]) == 2
        assert message in _err(capsys)
    assert main(["study", "mrmc", str(tmp_path / "absent.csv")]) == 2 and "does not exist" in _err(capsys)


def test_corrupt_input_leaves_no_study(tmp_path, capsys):
    real, runs = make_inputs(tmp_path)
    (runs[0] / "images" / "gen0-005.png").write_bytes(b"not a png")
    out = tmp_path / "s"
    assert main(["study", "create", "--reference", str(real), "--run", str(runs[0]), "--out", str(out),
                 "--n-per-source", "12", "--base-url", "https://x.org/a"]) == 2
    assert "corrupt" in _err(capsys)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".s.partial")]
    (runs[0] / "images" / "gen0-005.png").unlink()
    runs[0].joinpath("manifest.csv").write_text("".join(l for l in runs[0].joinpath("manifest.csv").read_text().splitlines(True)
                                                        if "gen0-005" not in l))
    assert main(["study", "create", "--reference", str(real), "--run", str(runs[0]), "--out", str(out),
                 "--n-per-source", "11", "--base-url", "https://x.org/a", "--readers", "__admin__"]) == 2
    assert "reserved" in _err(capsys)
    assert main(["study", "create", "--reference", str(real), "--run", str(runs[0]), "--out", str(out),
                 "--n-per-source", "11", "--base-url", "https://x.org/a"]) == 0
    assert capsys.readouterr().out.count("https://x.org/a/?token=") == 3
    assert (out / "admin" / "links.txt").read_text().count("https://x.org/a/?token=") == 3


def test_one_reader_one_generator(tmp_path):
    study, _ = make_study(tmp_path, readers=("solo",), generators=1, n_per_source=8)
    simulate_ratings(study)
    res = A.analyze(study, n_boot=100)
    g = res["per_generator"]["gen0-run"]
    long = A.load_long(study)
    assert g["reader_auc"] == pytest.approx(roc_auc_score(long["truth"], long["rating"]))
    assert g["reader_auc_ci_low"] <= g["reader_auc"] <= g["reader_auc_ci_high"] and g["n_readers"] == 1
    assert g["reader_auc_ci_high"] - g["reader_auc_ci_low"] > 0 or g["reader_auc"] in (0.0, 1.0)
    assert "mrmc" not in res and res["agreement"] == {}


def test_not_enough_images(tmp_path, capsys):
    real, runs = make_inputs(tmp_path, n_real=4)
    assert main(["study", "create", "--reference", str(real), "--run", str(runs[0]), "--out", str(tmp_path / "s"),
                 "--n-per-source", "6"]) == 2
    assert "has 4" in _err(capsys)
    assert not (tmp_path / "s").exists()
