"""The Streamlit reader app. Run by ``usbench study serve STUDY`` (the study folder comes in USBENCH_STUDY).

A reader opens ``/?token=...``; the token selects the reader (or the admin). Without a valid token
the page says only that the link is not valid. All state that matters lives in the SQLite store, so
a refresh, a server restart or another browser resumes at the first unrated item.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import streamlit as st

from usbench.reader_study.builder import read_config
from usbench.reader_study.store import DB_NAME, RatingsStore

SCALE = ["definitely real", "probably real", "unsure", "probably synthetic", "definitely synthetic"]
STUDY = Path(os.environ.get("USBENCH_STUDY", "."))

st.set_page_config(page_title="Reader study", layout="wide", initial_sidebar_state="collapsed")


def _store() -> RatingsStore | None:
    try:
        return RatingsStore(STUDY / DB_NAME)
    except Exception:
        return None


def _practice_truth() -> dict[str, str]:
    """Truth of the practice images only (for feedback); the full key is never read here."""
    path = STUDY / "practice.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {r["image_id"]: r["source"] for r in csv.DictReader(f)}


def _rate(reader: str, item: str, block: str, image_id: str, value: int, allow_back: bool, pos: int) -> None:
    """Button callback: one transaction, then move on."""
    comment = st.session_state.get(f"comment_{pos}", "") or ""
    with RatingsStore(STUDY / DB_NAME) as s:
        s.rate(reader, item, value, comment.strip(), allow_change=allow_back)
        nxt = s.next_position(reader)
    if block == "practice":
        truth = _practice_truth().get(image_id, "?")
        st.session_state["feedback"] = f"Practice: that image was **{truth}**; you answered {value} ({SCALE[value - 1]})."
    st.session_state["pos"] = max(st.session_state.get("pos", 0) + 1, 0) if allow_back else nxt
    st.session_state["pos"] = min(st.session_state["pos"], nxt)


def _back() -> None:
    st.session_state["pos"] = max(st.session_state.get("pos", 0) - 1, 0)


def reader_page(store: RatingsStore, reader: str) -> None:
    cfg = read_config(STUDY)
    allow_back = bool(cfg.get("allow_back", True))
    size = int(cfg.get("size", 256))
    seq = store.sequence(reader)
    nxt = store.next_position(reader)
    if st.session_state.get("reader") != reader:
        st.session_state["reader"] = reader
        st.session_state["pos"] = nxt
    pos = min(int(st.session_state.get("pos", nxt)), nxt)
    if not allow_back:
        pos = nxt  # locked: always the first unrated item, whatever the browser says
    st.session_state["pos"] = pos
    rated = store.ratings_of(reader)
    n_main = sum(1 for s in seq if s.block != "practice")
    done_main = sum(1 for s in seq if s.block != "practice" and s.item in rated)

    st.markdown(f"#### {cfg.get('title', 'Reader study')}")
    st.progress(done_main / max(n_main, 1), text=f"{done_main} of {n_main} rated" + (" (practice first)" if seq and seq[0].block == "practice" and pos < len(seq) and seq[pos].block == "practice" else ""))
    if fb := st.session_state.pop("feedback", None):
        st.info(fb)
    if pos >= len(seq):
        st.success("All images are rated. Thank you!")
        if allow_back and seq:
            st.button("← Previous", on_click=_back, key="back_done")
        return
    it = seq[pos]
    store.mark_shown(reader, it.item)
    if it.block == "practice":
        st.caption("Practice image: you will be told the answer. Practice answers are not analysed.")
    left, right = st.columns([3, 2], gap="large")
    with right:
        zoom = st.select_slider("Zoom", options=[1.0, 1.5, 2.0, 3.0], value=2.0 if size <= 320 else 1.0,
                                format_func=lambda z: f"{z:g}x", key="zoom")
        previous = rated.get(it.item)
        st.markdown("**Is this image real or synthetic?**")
        for k in range(1, 6):
            st.button(SCALE[k - 1], key=f"rate_{k}", shortcut=str(k), width="stretch",
                      on_click=_rate, args=(reader, it.item, it.block, it.image_id, k, allow_back, pos),
                      type="primary" if previous and previous["rating"] == k else "secondary")
        if previous:
            st.caption(f"Your answer: {previous['rating']} ({SCALE[previous['rating'] - 1]})")
        st.text_input("Comment (optional)", key=f"comment_{pos}", placeholder="anything that made you decide")
        if allow_back and pos > 0:
            st.button("← Previous", on_click=_back, key="back")
        st.caption("Keys 1–5 answer. " + ("You can go back and change an answer." if allow_back else "Answers are final."))
    with left:
        data = (STUDY / "images" / f"{it.image_id}.png").read_bytes()
        with st.container(height=min(int(size * zoom) + 30, 800), border=False):
            # width >= the image's own width: Streamlit serves the PNG bytes unchanged (no re-encoding)
            st.image(data, width=int(size * zoom), output_format="PNG")


def admin_page(store: RatingsStore) -> None:
    import pandas as pd

    from usbench.reader_study import export

    st.markdown("#### Reader study: admin")
    prog = pd.DataFrame(store.progress())
    if not prog.empty:
        prog["last_rated_at"] = pd.to_datetime(prog["last_rated_at"], unit="s", utc=True)
    st.dataframe(prog, hide_index=True)
    total = int(prog["rated"].sum()) if not prog.empty else 0
    st.caption(f"{total} ratings stored in {STUDY / DB_NAME}")
    cols = st.columns(3)
    for col, (fmt, name, mime) in zip(cols, [("long", "ratings_long.csv", "text/csv"), ("mrmcaov", "ratings_mrmcaov.csv", "text/csv"),
                                            ("imrmc", "ratings.imrmc", "text/plain")]):
        fn = {"long": export.long_csv, "mrmcaov": export.mrmcaov_csv, "imrmc": export.imrmc_text}[fmt]
        try:
            payload = fn(STUDY) if total else ""
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
