"""The fast B-mode breast ultrasound simulator (see docs/phantom.md).

>>> from usbench.phantom import simulate
>>> image, mask = simulate("benign", seed=1, size=64)
>>> image.shape, image.dtype.name, bool(mask.any())
((64, 64), 'uint8', True)
"""

from usbench.phantom.imaging import log_compress, render_envelope
from usbench.phantom.lesions import LABELS, LESION_LABELS, LesionSpec
from usbench.phantom.params import PRESETS, SIMULATOR_VERSION, SimParams, preset_params
from usbench.phantom.simulate import Phantom, build_phantom, simulate

__all__ = [
    "LABELS", "LESION_LABELS", "LesionSpec", "PRESETS", "Phantom", "SIMULATOR_VERSION", "SimParams",
    "build_phantom", "log_compress", "preset_params", "render_envelope", "simulate",
]
