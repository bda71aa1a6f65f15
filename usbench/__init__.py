"""usbench: evaluation and benchmarking of generative models of medical ultrasound."""

__version__ = "0.1.0"

from usbench.errors import UsbenchError  # noqa: E402
from usbench.imageset import ImageRecord, ImageSet  # noqa: E402

__all__ = ["ImageRecord", "ImageSet", "UsbenchError", "__version__"]
