"""The Streamlit reader app. Run by ``usbench study serve STUDY`` (the study folder comes in USBENCH_STUDY).

A reader opens ``/?token=...``; the token selects the reader (or the admin). Without a valid,
unrevoked, unexpired token the page says only that the link is not valid. Pages: instructions
(Markdown of the study) → reader details (asked once) → practice → the 5-point ratings (with the
study's extra questions) → the 2AFC pairs → the end page. All state that matters lives in the
SQLite store, so a refresh, a server restart or another browser resumes at the first unanswered
item. Every answer carries the id of the display it was drawn for; the store refuses it when that
display is no longer the reader's current one (a fast second click, a second tab, an old page).
"""

from __future__ import annotations

import csv
import json
import os
import uuid
from pathlib import Path

import streamlit as st

from usbench.reader_study.builder import DETAIL_ROLES, DETAIL_VOLUMES, SCALE, read_config
from usbench.reader_study.store import COMMENT_MAX, DB_NAME, LockedError, RatingsStore, StaleAnswerError

STUDY = Path(os.environ.get("USBENCH_STUDY", "."))
ZOOMS = {"fit": None, "1:1": 1.0, "2×": 2.0, "3×": 3.0}
SHORTCUTS = "Keys: **1–5** answer · **B** back · **Z** zoom · pairs: **← →**"

st.set_page_config(page_title="Reader study", layout="wide", initial_sidebar_state="collapsed")


def _store() -> RatingsStore | None:
    try:
        return RatingsStore(STUDY / DB_NAME)
    except Exception:
        return None


def _practice_truth() -> dict[str, str]:
    """Truth of the practice images only (for feedback); the full key is read only by the admin page
    and, when the study allows it, for a reader's own result after their answers are locked."""
    path = STUDY / "practice.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {r["image_id"]: r["source"] for r in csv.DictReader(f)}


def _session() -> str:
    if "session" not in st.session_state:
        st.session_state["session"] = uuid.uuid4().hex
    return st.session_state["session"]


# -- callbacks -------------------------------------------------------------------------------


def _answer(reader: str, display_id: int, item: str, block: str, image_id: str, value: int, allow_back: bool, pos: int,
            questions: list, task: str) -> None:
    """Button callback: one transaction, then move on. A refused (stale or locked) answer moves nowhere."""
    comment = st.session_state.get(f"comment_{pos}", "") or ""
    extras = {q["key"]: st.session_state.get(f"q_{q['key']}_{pos}") for q in questions} if task == "rate" else {}
    extras = {k: v for k, v in extras.items() if v is not None}
    try:
        with RatingsStore(STUDY / DB_NAME) as s:
            s.answer(reader, display_id, item, value, comment, extras, allow_change=allow_back, max_value=5 if task == "rate" else 2)
            nxt = s.next_position(reader)
    except StaleAnswerError:
        st.session_state["notice"] = "That answer was for an image no longer on the screen, so it was not stored. Answer the image shown now."
        return
    except LockedError:
        st.session_state["notice"] = "Your answers are locked: you have finished the study."
        return
    if block == "practice":
        truth = _practice_truth().get(image_id, "?")
        st.session_state["feedback"] = f"Practice: that image was **{truth}**; you answered {value} ({SCALE[value - 1]})."
    st.session_state["pos"] = min(st.session_state.get("pos", 0) + 1, nxt) if allow_back else nxt


def _back() -> None:
    st.session_state["pos"] = max(st.session_state.get("pos", 0) - 1, 0)


def _cycle_zoom() -> None:
    names = list(ZOOMS)
    cur = st.session_state.get("zoom") or "fit"
    st.session_state["zoom"] = names[(names.index(cur) + 1) % len(names)]


def _start() -> None:
    st.session_state["instructions_ok"] = True


# -- viewer ------------------------------------------------------------------------------------


def _viewer_css(zoom: float | None, brightness: int, contrast: int, pairs: bool) -> None:
    """Nearest-neighbour when enlarged, brightness/contrast as a CSS filter, and 'fit' sized to the
    window (a 1366×768 screen shows the whole image and the answer buttons)."""
    fit = "" if zoom else f"height: calc(100vh - {300 if pairs else 230}px) !important; width: auto !important; max-width: 100%; object-fit: contain;"
    st.markdown(
        "<style>"
        f"[data-testid='stImage'] img {{ image-rendering: pixelated; filter: brightness({brightness / 100:.2f}) contrast({contrast / 100:.2f}); {fit} }}"
        ".block-container { padding-top: 2.2rem; padding-bottom: 0.5rem; }"
        "</style>", unsafe_allow_html=True)


def _show_image(image_id: str, size: int, zoom: float | None, max_height: int) -> None:
    data = (STUDY / "images" / f"{image_id}.png").read_bytes()
    if zoom is None:
        st.image(data, width=size, output_format="PNG")
        return
    # enlarged: a scrolling box (pan with the scroll bars, wheel or touch); the browser scales the unchanged PNG
    with st.container(height=min(int(size * zoom) + 24, max_height), border=False):
        # width >= the image's own width: Streamlit serves the PNG bytes unchanged (no re-encoding)
        st.image(data, width=int(size * zoom), output_format="PNG")


def _display_controls() -> tuple[float | None, int, int]:
    c1, c2 = st.columns([1, 1.3])
    with c1:
        zoom_name = st.segmented_control("Zoom", list(ZOOMS), default="fit", key="zoom", label_visibility="collapsed") or "fit"
    with c2.expander("Brightness / contrast"):
        b = st.slider("Brightness %", 50, 150, 100, 5, key="brightness")
        c = st.slider("Contrast %", 50, 200, 100, 5, key="contrast")
    return ZOOMS[zoom_name], int(b), int(c)


# -- pages -------------------------------------------------------------------------------------


def instructions_page(cfg: dict) -> None:
    st.markdown(cfg.get("instructions") or f"## {cfg.get('title', 'Reader study')}")
    st.button("Start", key="start", type="primary", on_click=_start)


def details_page(store: RatingsStore, reader: str) -> None:
    st.markdown("#### About you")
    st.caption("Asked once; kept with your answers (the analysis can then compare groups of readers).")
    with st.form("details"):
        role = st.selectbox("Your role", DETAIL_ROLES, index=None, placeholder="choose", key="d_role")
        years = st.number_input("Years reading breast ultrasound", min_value=0, max_value=60, value=None, step=1, key="d_years")
        volume = st.selectbox("Breast ultrasound exams you read per week", DETAIL_VOLUMES, index=None, placeholder="choose", key="d_volume")
        if st.form_submit_button("Continue", type="primary"):
            if role is None or years is None or volume is None:
                st.warning("Please answer all three questions.")
            else:
                store.set_details(reader, {"role": role, "years": int(years), "us_volume": volume})
                st.rerun()


def end_page(store: RatingsStore, reader: str, cfg: dict) -> None:
    if not store.finished(reader):  # unlocked by an admin: the reader may go back and revise
        st.info("Your answers were unlocked by the study's admin: go back to change an answer; answering the last image locks them again.")
        if cfg.get("allow_back", True):
            st.button("← Previous", on_click=_back, key="back_done", shortcut="B")
        return
    st.success("All images are answered and your answers are locked. Thank you!")
    if cfg.get("show_own_result") and store.finished(reader):
        from usbench.reader_study.analysis import own_result

        st.markdown(own_result(STUDY, reader))


def reader_page(store: RatingsStore, reader: str) -> None:
    cfg = read_config(STUDY)
    allow_back = bool(cfg.get("allow_back", True))
    size = int(cfg.get("size", 256))
    questions = list(cfg.get("questions", []))
    seq = store.sequence(reader)
    nxt = store.next_position(reader)
    if st.session_state.get("reader") != reader:
        st.session_state["reader"] = reader
        st.session_state["pos"] = nxt
    rated = store.ratings_of(reader)
    if not rated and not st.session_state.get("instructions_ok"):
        instructions_page(cfg)
        return
    if cfg.get("ask_details", True) and store.details(reader) is None:
        details_page(store, reader)
        return
    pos = min(int(st.session_state.get("pos", nxt)), nxt)
    if not allow_back:
        pos = nxt  # locked: always the first unanswered item, whatever the browser says
    st.session_state["pos"] = pos
    n_main = sum(1 for s in seq if s.block != "practice")
    done_main = sum(1 for s in seq if s.block != "practice" and s.item in rated)

    in_practice = pos < len(seq) and seq[pos].block == "practice"
    st.markdown(f"**{cfg.get('title', 'Reader study')}**")
    st.progress(done_main / max(n_main, 1), text=f"{done_main} of {n_main} answered" + (" (practice first)" if in_practice else ""))
    if fb := st.session_state.pop("feedback", None):
        st.info(fb)
    if note := st.session_state.pop("notice", None):
        st.warning(note)
    if pos >= len(seq) or store.finished(reader):
        end_page(store, reader, cfg)
        return
    it = seq[pos]
    display = store.show(reader, it.item, _session())
    previous = rated.get(it.item)
    if it.task == "2afc":
        _pair_page(reader, it, display.id, previous, allow_back, pos, size)
        return
    if it.block == "practice":
        st.caption("Practice image: you will be told the answer. Practice answers are not analysed.")
    left, right = st.columns([3, 2], gap="medium")
    with right:
        zoom, b, c = _display_controls()
        st.markdown("**Is this image real or synthetic?**")
        args = (reader, display.id, it.item, it.block, it.image_id)
        for k in range(1, 6):
            st.button(SCALE[k - 1], key=f"rate_{k}", shortcut=str(k), width="stretch",
                      on_click=_answer, args=(*args, k, allow_back, pos, questions, "rate"),
                      type="primary" if previous and previous["rating"] == k else "secondary")
        prev_extras = json.loads(previous["extras"]) if previous else {}
        for q in questions:
            opts = list(q["options"])
            st.radio(q["text"], opts, index=opts.index(prev_extras[q["key"]]) if prev_extras.get(q["key"]) in opts else None,
                     key=f"q_{q['key']}_{pos}", horizontal=True)
        st.text_input("Comment (optional)", value=previous["comment"] if previous else "", key=f"comment_{pos}",
                      max_chars=COMMENT_MAX, placeholder="anything that made you decide")
        _nav(previous, allow_back, pos)
    with left:
        _viewer_css(zoom, b, c, pairs=False)
        _show_image(it.image_id, size, zoom, 560)


def _pair_page(reader, it, display_id, previous, allow_back, pos, size) -> None:
    st.markdown("**One of these two images is real, the other synthetic. Which one is real?**")
    top = st.container()
    bottom = st.container()
    with bottom:
        zoom, b, c = _display_controls()
    _viewer_css(zoom, b, c, pairs=True)
    with top:
        cols = st.columns(2, gap="medium")
    args = (reader, display_id, it.item, it.block, it.image_id)
    for col, image_id, value, label, key in ((cols[0], it.image_id, 1, "Left is real", "Left"),
                                             (cols[1], it.image_id_b, 2, "Right is real", "Right")):
        with col:
            _show_image(image_id, size, zoom, 440)
            st.button(label, key=f"afc_{value}", shortcut=key, width="stretch", on_click=_answer,
                      args=(*args, value, allow_back, pos, [], "2afc"),
                      type="primary" if previous and previous["rating"] == value else "secondary")
    with bottom:
        _pair_footer(previous, allow_back, pos)


def _pair_footer(previous, allow_back: bool, pos: int) -> None:
    st.text_input("Comment (optional)", value=previous["comment"] if previous else "", key=f"comment_{pos}",
                  max_chars=COMMENT_MAX, placeholder="anything that made you decide")
    _nav(previous, allow_back, pos, pair=True)


def _nav(previous, allow_back: bool, pos: int, pair: bool = False) -> None:
    cols = st.columns([1.4, 1, 2])
    if allow_back and pos > 0:
        cols[0].button("← Previous", on_click=_back, key="back", shortcut="B")
    cols[1].button("Zoom", on_click=_cycle_zoom, key="zoom_key", shortcut="Z", help="fit → 1:1 → 2× → 3×")
    if previous:
        what = ("left" if previous["rating"] == 1 else "right") if pair else f"{previous['rating']} ({SCALE[previous['rating'] - 1]})"
        cols[2].caption(f"Your answer: {what}")
    st.caption(SHORTCUTS + (" · answers can be changed until the last one" if allow_back else " · answers are final"))


def admin_page(store: RatingsStore) -> None:
    import pandas as pd

    from usbench.reader_study import export

    st.markdown("#### Reader study: admin")
    prog = pd.DataFrame(store.progress())
    if not prog.empty:
        prog["last_rated_at"] = pd.to_datetime(prog["last_rated_at"], unit="s", utc=True)
        details = {r["reader"]: json.loads(r["details"]) if r["details"] else {} for r in store.reader_table()}
        prog["role"] = prog["reader"].map(lambda r: details.get(r, {}).get("role", ""))
        prog["years"] = prog["reader"].map(lambda r: str(details.get(r, {}).get("years", "")))
    st.dataframe(prog, hide_index=True)
    total = int(prog["rated"].sum()) if not prog.empty else 0
    st.caption(f"{total} answers outside practice ({int(prog['practice_rated'].sum()) if not prog.empty else 0} practice answers "
               f"not counted), stored in {STUDY / DB_NAME}")
    audit = STUDY / "admin" / "audit.json"
    if audit.is_file():
        rep = json.loads(audit.read_text())
        best_p = min((r["p"] for r in rep["channels"]), default=1.0)
        st.caption(f"Blinding audit at creation: {'passed' if rep['passed'] else 'FAILED'} ({len(rep['channels'])} tests, "
                   f"smallest p = {best_p:.2g} against a limit of {rep['p_limit_bonferroni']:.2g}; `usbench study audit` for the table)")
    finished = [r for r in prog.to_dict("records") if r["finished"]] if not prog.empty else []
    if finished:
        c1, c2 = st.columns([2, 1])
        who = c1.selectbox("Unlock a finished reader (lets them change answers again; logged)", [r["reader"] for r in finished], key="unlock_who")
        if c2.button("Unlock", key="unlock"):
            store.unlock(who)
            st.rerun()
    cols = st.columns(5)
    for col, (fmt, name, mime) in zip(cols, [("long", "ratings_long.csv", "text/csv"), ("log", "answer_log.csv", "text/csv"),
                                             ("afc", "ratings_2afc.csv", "text/csv"), ("mrmcaov", "ratings_mrmcaov.csv", "text/csv"),
                                             ("imrmc", "ratings.imrmc", "text/plain")]):
        try:
            payload = export.WRITERS[fmt](STUDY) if total else ""
        except Exception as exc:  # e.g. a key that is missing: show it, do not crash the page
            col.caption(f"{fmt}: {exc}")
            continue
        col.download_button(f"Export {fmt}", payload, file_name=name, mime=mime, key=f"export_{fmt}", disabled=not total)
    if st.button("Analyse the finished cases", key="analyse", disabled=not total):
        from usbench.reader_study.analysis import analyze, summary_markdown

        try:
            st.markdown(summary_markdown(analyze(STUDY, n_boot=500, partial=True)).split("![")[0])
        except Exception as exc:  # too few ratings for an analysis yet
            st.warning(f"Not enough ratings to analyse yet: {exc}")


def main() -> None:
    store = _store()
    token = st.query_params.get("token")
    who = store.reader_for_token(token) if store is not None else None
    if who is None:
        st.markdown("This link is not valid.")
        return
    reader, is_admin = who
    try:
        if is_admin:
            admin_page(store)
        else:
            reader_page(store, reader)
    finally:
        store.close()


main()
