"""The Streamlit reader app through streamlit.testing.v1.AppTest (the real script, a real store)."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from _study_fixtures import make_study
from usbench.reader_study.builder import open_store

APP = str(Path(__file__).resolve().parents[1] / "usbench" / "reader_study" / "app.py")


@pytest.fixture()
def study(tmp_path, monkeypatch):
    path, links = make_study(tmp_path, readers=("alice", "bob"), n_per_source=3, practice=2)
    monkeypatch.setenv("USBENCH_STUDY", str(path))
    return path, links


def _open(token, begin=True):
    """Open the app with ``token``; with ``begin``, click through the instructions and (once per
    reader) the details form, as a reader does before the first image."""
    at = AppTest.from_file(APP, default_timeout=60)
    if token is not None:
        at.query_params["token"] = token
    at.run()
    if begin and any(b.key == "start" for b in at.button):
        at.button(key="start").click().run()
    if begin and any(s.key == "d_role" for s in at.selectbox):
        at.selectbox(key="d_role").select("radiologist")
        at.number_input(key="d_years").set_value(7)
        at.selectbox(key="d_volume").select("5 to 20")
        next(b for b in at.button if b.label == "Continue").click().run()
    return at


def _texts(at):
    return [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]


def _ratings(path, reader):
    with open_store(path) as s:
        return s.sequence(reader), s.ratings_of(reader)


@pytest.mark.parametrize("token", [None, "", "not-a-token", "x" * 32])
def test_wrong_or_absent_token_shows_nothing(study, token):
    at = _open(token)
    assert not at.exception
    assert [m.value for m in at.markdown] == ["This link is not valid."]
    assert len(at.button) == 0 and len(at.text_input) == 0 and len(at.dataframe) == 0


def test_token_login_rating_comment_and_timing(study):
    path, links = study
    at = _open(links.reader_tokens["alice"])
    assert not at.exception
    assert [b.label for b in at.button][:5] == ["definitely real", "probably real", "unsure", "probably synthetic", "definitely synthetic"]
    seq, _ = _ratings(path, "alice")
    first = seq[0]
    at.text_input(key="comment_0").input("looks smooth")
    at.button(key="rate_4").click().run()
    _, rated = _ratings(path, "alice")
    assert set(rated) == {first.item}
    assert rated[first.item]["rating"] == 4 and rated[first.item]["comment"] == "looks smooth"
    assert rated[first.item]["seconds"] is not None and rated[first.item]["seconds"] >= 0
    assert first.block == "practice" and any("Practice: that image was" in t for t in _texts(at))
    # bob's store is untouched: a reader writes only their own ratings
    assert _ratings(path, "bob")[1] == {}


def test_resume_after_restart(study):
    path, links = study
    at = _open(links.reader_tokens["alice"])
    for k in (1, 5, 3):
        at.button(key=f"rate_{k}").click().run()
    # a new session (refresh, server restart, another browser) starts at the first unrated item
    at2 = _open(links.reader_tokens["alice"])
    assert not at2.exception
    # 2 practice items + 1 main item were rated before the restart
    assert at2.get("progress")[0].proto.text.startswith("1 of ")
    at2.button(key="rate_2").click().run()
    seq, rated = _ratings(path, "alice")
    assert [rated[s.item]["rating"] for s in seq[:4]] == [1, 5, 3, 2]


def test_back_navigation_allowed_changes_answer(study):
    path, links = study
    at = _open(links.reader_tokens["alice"])
    at.button(key="rate_1").click().run()
    at.button(key="back").click().run()
    at.button(key="rate_5").click().run()
    seq, rated = _ratings(path, "alice")
    assert rated[seq[0].item]["rating"] == 5 and rated[seq[0].item]["revisions"] == 1
    assert seq[1].item not in rated


def test_locked_navigation(tmp_path, monkeypatch):
    path, links = make_study(tmp_path, readers=("alice", "bob"), n_per_source=3, allow_back=False)
    monkeypatch.setenv("USBENCH_STUDY", str(path))
    at = _open(links.reader_tokens["alice"])
    at.button(key="rate_1").click().run()
    assert "back" not in [b.key for b in at.button]
    # even a tampered session state cannot go back to the rated item
    at.session_state["pos"] = 0
    at.run()
    at.button(key="rate_5").click().run()
    seq, rated = _ratings(path, "alice")
    assert rated[seq[0].item]["rating"] == 1 and rated[seq[0].item]["revisions"] == 0
    assert rated[seq[1].item]["rating"] == 5


def test_admin_page(study):
    path, links = study
    at = _open(links.reader_tokens["bob"])
    at.button(key="rate_3").click().run()
    at.button(key="rate_4").click().run()
    at.button(key="rate_5").click().run()
    admin = _open(links.admin_token)
    assert not admin.exception
    table = admin.dataframe[0].value.set_index("reader")
    with open_store(path) as s:
        expected = {r["reader"]: (r["total"], r["rated"], r["practice_rated"]) for r in s.progress()}
        n_main = sum(1 for it in s.sequence("bob") if it.block != "practice")
    assert {r: (int(table.loc[r, "total"]), int(table.loc[r, "rated"]), int(table.loc[r, "practice_rated"])) for r in table.index} == expected
    # the two practice answers are not counted as ratings (the reader page says "1 of n" too)
    assert expected["bob"] == (n_main, 1, 2) and expected["alice"][1:] == (0, 0)
    assert table.loc["bob", "role"] == "radiologist" and str(table.loc["bob", "years"]) == "7"
    exports = [e for e in admin.get("download_button")]
    assert len(exports) == 5
    # the reader page never shows the admin table
    assert len(_open(links.reader_tokens["alice"]).dataframe) == 0


def test_admin_analysis_button(study):
    from _study_fixtures import simulate_ratings

    path, links = study
    simulate_ratings(path)
    admin = _open(links.admin_token)
    admin.button(key="analyse").click().run()
    assert not admin.exception
    text = "\n".join(m.value for m in admin.markdown)
    assert "## Generators" in text and "gen0-run" in text and "gen1-run" in text
