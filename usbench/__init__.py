"""usbench: evaluation and benchmarking of generative models of medical ultrasound.

The public API (docs/api.md)::

    import usbench
    res = usbench.evaluate("samples/", "Dataset_BUSI_with_GT", metrics=["fid"], inception_weights="w.pth")
    res.value("fid"), res.interval("fid", subset="benign"), res.to_frame()

Names are imported when first used (module ``__getattr__``), so ``import usbench`` stays fast and
imports neither torch nor numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "evaluate": "usbench.api", "generate": "usbench.api", "run": "usbench.api", "load_dataset": "usbench.api",
    "list_generators": "usbench.api", "list_metrics": "usbench.api", "list_datasets": "usbench.api",
    "write_leaderboard": "usbench.api",
    "EvaluationResult": "usbench.results", "BenchmarkResult": "usbench.results", "MetricEntry": "usbench.results",
    "SkippedMetric": "usbench.results", "RunResult": "usbench.results", "Interval": "usbench.results",
    "RunConfig": "usbench.config", "load_config": "usbench.config",
    "ImageRecord": "usbench.imageset", "ImageSet": "usbench.imageset",
    "UsbenchError": "usbench.errors",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'usbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
