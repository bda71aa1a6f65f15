"""Start the Streamlit reader app for one study (``usbench study serve``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from usbench.errors import InputError
from usbench.reader_study.builder import read_config, read_key
from usbench.reader_study.store import DB_NAME, RatingsStore

APP = Path(__file__).with_name("app.py")


def check_study(study: Path) -> Path:
    """Refuse a folder that lacks the config, the key or the database (one-line errors)."""
    study = Path(study)
    if not study.is_dir():
        raise InputError(f"study folder {study} does not exist", "create it with `usbench study create`")
    read_config(study)
    read_key(study)
    if not (study / DB_NAME).is_file():
        raise InputError(f"the study {study} has no {DB_NAME}", "the database is written by `usbench study create`; restore it from a backup")
    with RatingsStore(study / DB_NAME) as s:
        if not s.readers():
            raise InputError(f"the study database {study / DB_NAME} has no readers", "recreate the study")
    return study.resolve()


def command(study: Path, port: int = 8501, host: str = "127.0.0.1", base_path: str = "") -> list[str]:
    """The streamlit command line: local address, headless, no telemetry, no file watcher."""
    extra = ["--server.baseUrlPath", base_path.strip("/")] if base_path.strip("/") else []
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--server.runOnSave", "false", "--client.toolbarMode", "minimal", "--client.showErrorDetails", "none",
        "--global.developmentMode", "false", *extra,
    ]


def environment(study: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["USBENCH_STUDY"] = str(Path(study).resolve())
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = package_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def serve(study: Path, port: int = 8501, host: str = "127.0.0.1", base_path: str = "") -> int:
    """Run the app in the foreground until interrupted.

    Streamlit runs as a child: SIGTERM (systemd stop, kill) is passed on to it, and Ctrl-C (which
    the terminal sends to both) waits for the server to stop and then ends like every other
    command, exit 130 with "interrupted; rerun the same command to resume". No orphan is left.
    """
    import signal

    study = check_study(study)
    cmd, env = command(study, port, host, base_path), environment(study)
    sys.stdout.flush()
    child = subprocess.Popen(cmd, env=env)

    def forward(signum, _frame):
        child.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)  # in case it came from kill -INT, not the terminal
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
