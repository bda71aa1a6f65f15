"""Metrics and feature extractors behind registries (see :mod:`usbench.metrics.base`)."""

from usbench.metrics.base import Metric, MetricContext, MetricResult
from usbench.registry import Registry

METRICS: Registry = Registry("metric", "usbench.metrics")
EXTRACTORS: Registry = Registry("extractor", "usbench.extractors")

__all__ = ["DEFAULTS", "EXTRACTORS", "METRICS", "Metric", "MetricContext", "MetricResult", "OFFLINE_DEFAULTS", "TASK_DEFAULTS"]

# === metrics suite (issue 4)
EXTRACTORS.add_builtin("inception", "usbench.metrics.extractors:InceptionExtractor")
EXTRACTORS.add_builtin("radiomics", "usbench.metrics.radiomics:RadiomicsExtractor")
EXTRACTORS.add_builtin("frd-v1", "usbench.metrics.frd_features:FrdV1Extractor")
EXTRACTORS.add_builtin("dinov2", "usbench.metrics.extractors:Dinov2Extractor")
EXTRACTORS.add_builtin("torch-module", "usbench.metrics.extractors:TorchModuleExtractor")
METRICS.add_builtin("fid", "usbench.metrics.distribution:FID")
METRICS.add_builtin("fd-inf", "usbench.metrics.distribution:FDInfinity")
METRICS.add_builtin("kid", "usbench.metrics.distribution:KID")
METRICS.add_builtin("prdc", "usbench.metrics.distribution:PRDC")
METRICS.add_builtin("frd", "usbench.metrics.distribution:FRD")
METRICS.add_builtin("ms-ssim-diversity", "usbench.metrics.diversity:MsssimDiversity")
METRICS.add_builtin("lpips-diversity", "usbench.metrics.diversity:LpipsDiversity")
METRICS.add_builtin("memorization", "usbench.metrics.memorization:Memorization")

# (metric name, config) run when no weights are present: radiomic features stand in for Inception.
OFFLINE_DEFAULTS: list[tuple[str, dict]] = [
    ("frd", {}),
    ("kid", {"extractor": "radiomics"}),
    # prdc on radiomic features left the offline defaults (issue 11): its precision falls to 0 at the
    # first step of a blur or noise ladder and stays there, even after the rank-Gaussian transform
    ("ms-ssim-diversity", {}),
    ("memorization", {"extractor": "radiomics"}),
]
# The full set when Inception (and AlexNet for LPIPS) weights are present.
DEFAULTS: list[tuple[str, dict]] = [
    ("fid", {}),
    ("kid", {}),
    ("fd-inf", {}),
    ("prdc", {}),
    ("frd", {}),
    ("ms-ssim-diversity", {}),
    ("lpips-diversity", {}),
    ("memorization", {}),
]
# === end metrics suite (issue 4)

# === task metrics (issue 6): they need a segmenter (usbench segmenter train); skipped with that reason when absent
METRICS.add_builtin("mask-adherence", "usbench.tasks.adherence:MaskAdherence")
METRICS.add_builtin("lesion-presence", "usbench.tasks.adherence:LesionPresence")
TASK_DEFAULTS: list[tuple[str, dict]] = [("mask-adherence", {}), ("lesion-presence", {})]
