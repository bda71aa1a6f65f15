"""Shared test setup: offline, isolated caches, few threads. Fixtures of one area live in its test files."""

import os

os.environ.setdefault("USBENCH_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from usbench.generators import GENERATORS  # noqa: E402
from usbench.metrics import METRICS  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests run as two pytest-xdist workers on two cores, with tiny models: one thread each is
    fastest (two threads per worker only contend; measured 3-15x slower on small convolutions)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own usbench cache and torch/HF homes, so no test sees another's weights."""
    base = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("USBENCH_CACHE", str(base / "usbench"))
    monkeypatch.setenv("TORCH_HOME", str(base / "torch"))
    monkeypatch.setenv("HF_HOME", str(base / "hf"))
    yield


PLUGIN = Path(__file__).parent / "plugin_fixture"


@pytest.fixture
def plugin(monkeypatch):
    """Put the toy third-party plugin (tests/plugin_fixture) on the path, as `pip install` would."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PLUGIN), os.environ.get("PYTHONPATH", "")]))
    for reg in (GENERATORS, METRICS):
        monkeypatch.setattr(reg, "_scanned", False)
    yield
    for reg in (GENERATORS, METRICS):
        reg._lazy.pop("toy-noise", None), reg._lazy.pop("toy-mean-gap", None)
        reg._loaded.pop("toy-noise", None), reg._loaded.pop("toy-mean-gap", None)


