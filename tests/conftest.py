"""Shared test setup: offline, isolated caches, few threads. Fixtures of one area live in its test files."""

import os

os.environ.setdefault("USBENCH_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own usbench cache and torch/HF homes, so no test sees another's weights."""
    base = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("USBENCH_CACHE", str(base / "usbench"))
    monkeypatch.setenv("TORCH_HOME", str(base / "torch"))
    monkeypatch.setenv("HF_HOME", str(base / "hf"))
    yield
