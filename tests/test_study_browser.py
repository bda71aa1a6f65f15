"""End to end in a real browser: `usbench study serve` in a subprocess, Debian's headless Chromium
driven by Playwright rates three images (mouse and keyboard); the store holds them."""

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
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*) FROM ratings WHERE reader=?", (reader,)).fetchone()[0]
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
                                     env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _wait_healthy(self.port, self.proc)
        return self

    def kill(self) -> None:
        """SIGKILL the server (`usbench study serve` execs streamlit: one process): a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(15)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture()
def server(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium chromium-driver)")
    pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    study, links = make_study(tmp_path, readers=("alice", "bob"), n_per_source=3, size=256)
    srv = Server(study).start()
    try:
        yield study, links, srv
    finally:
        srv.kill()


def test_rate_three_images_in_chromium(server, tmp_path):
    from playwright.sync_api import sync_playwright

    study, links, srv = server
    base = srv.url
    db = study / "ratings.sqlite"
    shots = Path(os.environ.get("USBENCH_SCREENSHOTS", tmp_path))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 1000})
        # a wrong token sees nothing
        page.goto(f"{base}/?token=wrong")
        page.get_by_text("This link is not valid.").wait_for(timeout=60_000)
        assert page.locator("img").count() == 0 and page.get_by_role("button").filter(has_text="synthetic").count() == 0

        page.goto(f"{base}/?token={links.reader_tokens['alice']}")
        page.get_by_role("button", name="probably synthetic").wait_for(timeout=60_000)
        img = page.locator("[data-testid='stImage'] img").first
        img.wait_for()
        # served bytes are exactly the blinded file: same PNG, no re-encoding, no metadata added
        served = page.request.get(img.get_attribute("src")).body()
        files = {p.read_bytes() for p in (study / "images").glob("*.png")}
        assert served in files
        html = page.content()
        assert "gen0" not in html and "busi" not in html and "original" not in html
        # not even the opaque ids: the page carries nothing that could link two showings or a file
        assert not any(p.stem in html for p in (study / "images").glob("*.png"))
        page.screenshot(path=str(shots / "reader_app.png"))

        page.get_by_role("button", name="probably synthetic").click()
        _wait_count(db, "alice", 1)
        page.get_by_text("1 of").wait_for()
        page.get_by_text("Which images are real?").click()  # focus the page, not a text field
        page.keyboard.press("2")  # the keyboard shortcut
        _wait_count(db, "alice", 2)
        page.get_by_text("2 of").wait_for()
        page.get_by_role("button", name="definitely synthetic").click()
        _wait_count(db, "alice", 3)

        # a reload resumes where the reader was
        page.reload()
        page.get_by_text("3 of").wait_for(timeout=60_000)
        # so does a crash of the server: kill it, start it again, open the link again
        srv.kill()
        srv.start()
        page.goto(f"{base}/?token={links.reader_tokens['alice']}")
        page.get_by_text("3 of").wait_for(timeout=60_000)
        assert _count(db, "alice") == 3

        admin = browser.new_page(viewport={"width": 1100, "height": 700})
        admin.goto(f"{base}/?token={links.admin_token}")
        admin.get_by_text("Reader study: admin").wait_for(timeout=60_000)
        admin.get_by_role("button", name="Export long").wait_for()
        admin.screenshot(path=str(shots / "admin_app.png"))
        browser.close()

    con = sqlite3.connect(db)
    rows = con.execute("SELECT s.position, r.rating FROM ratings r JOIN sequence s USING(reader, item) "
                       "WHERE r.reader='alice' ORDER BY s.position").fetchall()
    con.close()
    assert rows == [(0, 4), (1, 2), (2, 5)]
