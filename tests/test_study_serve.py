"""`usbench study serve` keeps the Ctrl-C promise of every command: exit 130, one line saying how to go on,
and no streamlit server left behind."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from _study_fixtures import make_study
from test_study_browser import _free_port, _wait_healthy


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
            return True
    except OSError:
        return False


def test_ctrl_c_stops_the_server_with_130_and_the_resume_line(tmp_path):
    study, _links = make_study(tmp_path, readers=("alice",), n_per_source=1, generators=1)
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "usbench", "study", "serve", str(study), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_healthy(port, proc)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
        rc = proc.wait(30)
        err = proc.stderr.read().decode()
        assert rc == 130, err
        assert err.strip().splitlines()[-1] == "interrupted; rerun the same command to resume", err
        assert "Traceback" not in err
        deadline = time.time() + 10
        while _answers(port) and time.time() < deadline:
            time.sleep(0.2)
        assert not _answers(port), "the streamlit server outlived usbench"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
