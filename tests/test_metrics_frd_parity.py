"""FRD equals frd-score 1.0.1 (v1, its defaults) on the same folders, per feature and per distance.

frd-score runs pyradiomics 3.0.1 with wavelets and resampling, so the sets are small (12 and 10
images of 48 px). Both are test dependencies installed by the README's test command; the test
skips, saying why, where they are absent.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from _metrics_fixtures import degrade, make_images, write_set
from usbench.imageset import read_gray
from usbench.metrics.distribution import frd_d2, frd_normalize
from usbench.metrics.frd_features import FEATURE_NAMES, FrdV1Extractor, frd_v1_features


@pytest.fixture(scope="module")
def frd_score():
    pytest.importorskip("radiomics", reason="pyradiomics is not installed (see the README's test command)")
    frd = pytest.importorskip("frd_score.frd", reason="frd-score is not installed (see the README's test command)")
    frd._ensure_radiomics()
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    frd.setVerbosity(60)
    return frd


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("frd")
    rng = np.random.default_rng(3)
    ref = write_set(root / "ref", make_images(12, seed=1, size=48))
    blurred = write_set(root / "blurred", [degrade(im, "blur", 1.2, rng) for im in make_images(10, seed=2, size=48)])
    return ref, blurred


def _features(imageset):
    return FrdV1Extractor(workers=1).extract((read_gray(r.file) for r in imageset.records), len(imageset))


def test_features_equal_frd_score_per_image(frd_score, folders):
    ref, _ = folders
    extractor = frd_score.get_feature_extractor(frd_version="v1", image_dim=2)
    _, theirs, _ = frd_score.process_image_mask_pair((str(ref.records[0].file), None), feature_extractor=extractor,
                                                     frd_version="v1")
    ours = dict(zip(FEATURE_NAMES, frd_v1_features(read_gray(ref.records[0].file))))
    named = {k if k.startswith(("diagnostics", "wavelet")) else f"original_{k}": v for k, v in theirs.items()}
    assert set(named) == set(ours)
    worst = max(abs(ours[k] - v) / max(abs(v), 1e-9) for k, v in named.items())
    assert worst < 1e-6


def test_frd_equals_frd_score_on_the_same_folders(frd_score, folders):
    ref, gen = folders
    theirs = float(frd_score.compute_frd([str(ref.root), str(gen.root)], frd_version="v1", num_workers=1))
    F_ref, F_gen = _features(ref), _features(gen)
    ours = float(np.log(frd_d2(F_gen, F_ref)))
    assert ours == pytest.approx(theirs, rel=1e-4)
    _, _, dropped = frd_normalize(F_gen, F_ref)
    assert dropped > 0  # constant diagnostics (mask voxel counts) are dropped, as frd-score drops them
