"""Where tests find the real data shared beside the repository (never copied into it).

``USBENCH_TEST_DATA`` when set, else ``../shared/data`` relative to the repository root. A test
that needs a file there skips with the reason when it is absent (CI has the data in place).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The shared-data folder (it may not exist)."""
    env = os.environ.get("USBENCH_TEST_DATA")
    return Path(env).expanduser() if env else REPO.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """``shared_data_dir() / parts``, or skip the test saying what is missing and how to provide it."""
    path = shared_data_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data {path} not found (put it there or set USBENCH_TEST_DATA to the data folder)")
    return path
