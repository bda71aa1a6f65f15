"""The optional PyMUST engine (SIMUS + delay-and-sum) on a tiny field of view (about 1-2 s)."""

from __future__ import annotations

import numpy as np
import pytest

from usbench.phantom import SimParams
from usbench.phantom.pymust_engine import pymust_available, render_pymust

pytestmark = pytest.mark.skipif(not pymust_available(), reason="PyMUST is not installed (pip install pymust)")

TINY = SimParams(depth_mm=4.0, width_mm=4.0, scatterers_per_cell=4.0, depth_of_field_mm=1e6)


def test_pymust_renders_an_anechoic_cyst_darker_than_tissue():
    h = w = 32
    z = (np.arange(h) + 0.5) * TINY.depth_mm / h
    x = (np.arange(w) + 0.5) * TINY.width_mm / w - TINY.width_mm / 2
    cyst = (z[:, None] - 2.2) ** 2 + x[None, :] ** 2 < 1.1**2
    echo = np.where(cyst, -40.0, 0.0).astype(np.float32)
    image = render_pymust(echo, None, TINY, np.random.default_rng(0))
    assert image.shape == (h, w) and image.dtype == np.uint8
    # A single plane wave without compounding fills an anechoic cyst with clutter (sidelobes of the
    # surrounding speckle), so its contrast is far below the 40 dB of the medium, but it is there.
    contrast_db = (image[cyst].mean() - image[~cyst][32:].mean()) * TINY.dynamic_range_db / 255
    assert contrast_db < -3.0


def test_pymust_engine_through_simulate_and_the_generator():
    from usbench.generators import GenerationRequest, build_generator
    from usbench.phantom import simulate

    z, x = np.mgrid[:32, :32]
    given = (z - 16) ** 2 + (x - 16) ** 2 < 8**2
    image, mask = simulate("benign", 1, 32, mask=given, params=TINY, engine="pymust")
    assert image.shape == (32, 32) and image.dtype == np.uint8 and np.array_equal(mask, given)
    gen = build_generator("phantom", {"engine": "pymust", "depth_mm": 4.0, "width_mm": 4.0, "scatterers_per_cell": 4.0})
    (again,) = gen.generate([GenerationRequest("a", "benign", 1, 32, mask=given)])
    # same anatomy, lesion and scatterers; differs from TINY only by the depth of field of the beam,
    # which the PyMUST engine does not use (SIMUS computes the real beam)
    assert np.array_equal(again, image)
