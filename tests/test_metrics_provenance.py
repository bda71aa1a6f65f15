"""Provenance is true: the sha256 of the weights file each extractor that ran actually loaded
(checked against the coreutils ``sha256sum``), no entry for an extractor that never ran, and a
``<metric>_weights_official`` column beside a metric that used weights."""

import shutil
import subprocess

import numpy as np
import pytest
import torch

from _metrics_fixtures import make_images, tiny_net, write_set
from usbench.evaluation import default_provenance
from usbench.metrics.features import FeatureStore


def test_extractors_sha256_is_the_digest_of_the_file_used_and_only_of_extractors_that_ran(tmp_path):
    if shutil.which("sha256sum") is None:
        pytest.skip("coreutils sha256sum is not installed")
    torch.manual_seed(0)
    path = tmp_path / "tiny.pth"
    torch.save(tiny_net().state_dict(), path)
    images = write_set(tmp_path / "set", make_images(4, seed=5, size=32))
    store = FeatureStore(None, image_size=32, options={
        "torch-module": {"module": "_metrics_fixtures:tiny_net", "weights": str(path)},
        "inception": {"weights": str(tmp_path / "missing.pth")}})
    store(images, "torch-module")
    store(images, "radiomics")
    store.extractor("inception")  # built, never ran (its weights are missing)
    expected = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]
    prov = default_provenance(store, "ref", "hash", 4, 32)["extractors_sha256"]
    assert prov == {"radiomics": "no weights", "torch-module": expected}


def test_weights_official_column_sits_beside_the_metric():
    from usbench.leaderboard import columns

    rows = [{"run_id": "a", "generator": "g", "subset": "all", "fid": 1.0, "fid_ci_low": 0.5, "fid_ci_high": 2.0,
             "fid_weights_official": False, "kid": 0.1}]
    cols = columns(rows)
    assert cols.index("fid_weights_official") == cols.index("fid_ci_high") + 1
