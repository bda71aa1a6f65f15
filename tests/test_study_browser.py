"""End to end in a real browser: `usbench study serve` in a subprocess, Debian's headless Chromium
driven by Playwright through a whole study — instructions, reader details, practice, ratings with
back/comment/keyboard, a server killed mid-way and resumed, the 2AFC block, the end page — and the
answer log holds every first and final answer. Takes the screenshots of docs/reader_study.md
(set USBENCH_SCREENSHOTS=docs/images to refresh them)."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from _study_fixtures import make_study
from usbench.reader_study.builder import open_store

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.browser
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, proc, timeout=90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError("streamlit did not become healthy")


def _count(db: Path, reader: str) -> int:
    """Answers in the log (every answer, revisions included)."""
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*) FROM answers WHERE reader=?", (reader,)).fetchone()[0]
    finally:
        con.close()


def _wait_count(db, reader, n, timeout=30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and _count(db, reader) < n:
        time.sleep(0.1)
    assert _count(db, reader) == n


class Server:
    """`usbench study serve` in a subprocess, restartable on the same port."""

    def __init__(self, study: Path):
        self.study, self.port, self.proc = study, _free_port(), None
        self.env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def start(self) -> "Server":
        self.proc = subprocess.Popen([sys.executable, "-m", "usbench", "study", "serve", str(self.study), "--port", str(self.port)],
                                     env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)  # its own process group: usbench and its streamlit child
        _wait_healthy(self.port, self.proc)
        return self

    def kill(self) -> None:
        """SIGKILL the server's process group (usbench and its streamlit child): a crash."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(15)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture()
def server(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium chromium-driver)")
    pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    study, links = make_study(tmp_path, readers=("alice", "bob"), n_per_source=1, size=256, practice=2, afc_pairs=1,
                              show_own_result=True, questions=[{"key": "plausible", "text": "Is the lesion plausible?",
                                                                "options": ["yes", "no", "no lesion"]}])
    srv = Server(study).start()
    try:
        yield study, links, srv
    finally:
        srv.kill()


def test_whole_study_in_chromium(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    study, links, srv = server
    base = srv.url
    db = study / "ratings.sqlite"
    shots = Path(os.environ.get("USBENCH_SCREENSHOTS", tmp_path))
    expected: dict[int, list[int]] = {}  # position -> every value the reader gave there, in order
    n = [0]

    def answered(pos: int, value: int, page_text: str | None = None) -> None:
        expected.setdefault(pos, []).append(value)
        n[0] += 1
        _wait_count(db, "alice", n[0])
        if page_text:
            page.get_by_text(page_text).first.wait_for()

    def comment_box():
        """The comment field of the page as drawn now (not a stale one fading out during a rerun)."""
        return page.locator("xpath=//input[@aria-label='Comment (optional)'][not(ancestor::*[@data-stale='true'])]")

    def idle(button: str = "definitely real"):
        """Wait until the page is drawn and its rerun is over (a reader is never this fast)."""
        # during a rerun the fading (stale) copy and the new one are both in the DOM: wait for one
        expect(page.get_by_role("button", name=button)).to_have_count(1)
        expect(comment_box()).to_have_count(1)
        page.wait_for_timeout(300)

    def focus_page(button: str = "definitely real"):
        """Give the page (not a text field) the keyboard."""
        idle(button)
        page.get_by_text(" answered").first.click()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(f"{base}/?token=wrong")
        page.get_by_text("This link is not valid.").wait_for(timeout=60_000)
        assert page.locator("img").count() == 0 and page.get_by_role("button").count() == 0

        # instructions, then the details form (asked once)
        page.goto(f"{base}/?token={links.reader_tokens['alice']}")
        page.get_by_role("button", name="Start").wait_for(timeout=60_000)
        assert page.get_by_text("The first 2 images are practice").count() == 1
        page.screenshot(path=str(shots / "reader_instructions.png"))
        page.get_by_role("button", name="Start").click()
        page.get_by_text("About you").wait_for()
        page.get_by_label("Your role").click()
        page.get_by_role("option", name="radiologist", exact=True).click()
        page.get_by_label("Years reading breast ultrasound").fill("12")
        page.get_by_label("Breast ultrasound exams you read per week").click()
        page.get_by_role("option", name="20 to 50").click()
        page.get_by_role("button", name="Continue").click()

        # practice: feedback after each answer
        page.get_by_role("button", name="probably synthetic").wait_for(timeout=30_000)
        page.get_by_role("button", name="unsure").click()
        answered(0, 3, "Practice: that image was")
        page.get_by_role("button", name="definitely real").click()
        answered(1, 1, "0 of 6 answered")

        # main block: the served bytes are exactly a blinded file; nothing on the page names a source
        # the live image only: during a rerun the previous page's image (whose media URL Streamlit has
        # already dropped: "File not found") can still be in the DOM, marked stale
        img = page.locator("xpath=//*[@data-testid='stImage']//img[not(ancestor::*[@data-stale='true'])]").first
        idle()
        blinded = {p.read_bytes() for p in (study / "images").glob("*.png")}
        deadline = time.time() + 20
        while True:
            response = page.request.get(img.get_attribute("src"))
            if response.ok or time.time() > deadline:
                break
            time.sleep(0.3)  # the src was read between two reruns; read it again from the live page
        assert response.ok, f"the image URL of the live page was not served: {response.status}"
        assert response.body() in blinded
        html = page.content()
        assert "gen0" not in html and "busi" not in html and "original" not in html
        assert not any(p.stem in html for p in (study / "images").glob("*.png"))
        # at 1366x768 the whole image and the answer buttons are on screen without scrolling
        button = page.get_by_role("button", name="definitely synthetic")
        deadline = time.time() + 20  # a Streamlit rerun can detach the elements for a moment: wait for the live ones
        while (img.bounding_box() is None or button.bounding_box() is None) and time.time() < deadline:
            time.sleep(0.2)
        box, button_box = img.bounding_box(), button.bounding_box()
        assert box is not None and button_box is not None, "the image or the answer buttons never settled on screen"
        assert box["y"] + box["height"] <= 768 and button_box["y"] < 768
        page.get_by_text("yes", exact=True).click()  # the extra question
        idle()
        comment = comment_box()
        comment.fill("speckle looks tiled")
        comment.press("Enter")
        idle()
        page.get_by_role("button", name="probably synthetic").click()
        answered(2, 4, "1 of 6 answered")
        with open_store(study) as s:
            assert [(a["value"], a["comment"]) for a in s.answer_log("alice")][-1] == (4, "speckle looks tiled")
        focus_page()
        page.keyboard.press("2")  # the keyboard shortcut
        answered(3, 2, "2 of 6 answered")
        page.screenshot(path=str(shots / "reader_app.png"))
        # back: the earlier answer and its comment are shown; a changed answer is a new revision
        page.get_by_role("button", name="Previous").click()
        page.get_by_text("Your answer: 2").wait_for()
        page.get_by_role("button", name="Previous").click()
        page.get_by_text("Your answer: 4").wait_for()
        idle()
        expect(comment_box()).to_have_value("speckle looks tiled")
        page.get_by_role("button", name="definitely synthetic").click()
        answered(2, 5)
        page.get_by_text("Your answer: 2").wait_for()  # forward to the next (answered) image
        focus_page()
        page.keyboard.press("z")  # zoom 1:1: a scrolling box, nearest neighbour
        page.keyboard.press("1")
        answered(3, 1, "2 of 6 answered")

        # the server dies mid-way; a new server, the same link: the reader resumes where they were
        srv.kill()
        srv.start()
        page.goto(f"{base}/?token={links.reader_tokens['alice']}")
        page.get_by_text("2 of 6 answered").wait_for(timeout=60_000)
        for k, value in enumerate((5, 3)):
            focus_page()
            page.keyboard.press(str(value))
            answered(4 + k, value, f"{3 + k} of 6 answered")

        # the 2AFC block: two images side by side
        page.get_by_role("button", name="Left is real").wait_for()
        assert page.locator("[data-testid='stImage'] img").count() == 2
        page.screenshot(path=str(shots / "reader_2afc.png"))
        page.get_by_role("button", name="Left is real").click()
        answered(6, 1, "5 of 6 answered")
        focus_page("Right is real")
        page.keyboard.press("ArrowRight")
        answered(7, 2)
        page.get_by_text("your answers are locked").wait_for()
        page.get_by_text("Your result").wait_for()  # this study shows a reader their own result

        admin = browser.new_page(viewport={"width": 1366, "height": 768})
        admin.goto(f"{base}/?token={links.admin_token}")
        admin.get_by_text("Reader study: admin").wait_for(timeout=60_000)
        admin.get_by_role("button", name="Export long").wait_for()
        admin.screenshot(path=str(shots / "admin_app.png"))
        browser.close()

    with open_store(study) as s:
        seq = {it.item: it.position for it in s.sequence("alice")}
        log = s.answer_log("alice")
        assert s.finished("alice") and s.details("alice") == {"role": "radiologist", "years": 12, "us_volume": "20 to 50"}
        current = s.ratings_of("alice")
    got: dict[int, list[int]] = {}
    for a in log:
        got.setdefault(seq[a["item"]], []).append(a["value"])
    assert got == expected  # every answer, first and final, in order, and nothing else
    first_main = next(it for it, p in seq.items() if p == 2)
    assert current[first_main]["first_rating"] == 4 and current[first_main]["rating"] == 5
    assert current[first_main]["first_comment"] == current[first_main]["comment"] == "speckle looks tiled"
    assert json.loads(current[first_main]["extras"]) == {"plausible": "yes"}
