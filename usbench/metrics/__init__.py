"""Metrics and feature extractors behind registries (see :mod:`usbench.metrics.base`)."""

from usbench.metrics.base import Metric, MetricContext, MetricResult
from usbench.registry import Registry

METRICS: Registry = Registry("metric", "usbench.metrics")
EXTRACTORS: Registry = Registry("extractor", "usbench.extractors")

__all__ = ["EXTRACTORS", "METRICS", "Metric", "MetricContext", "MetricResult"]

# task metrics (issue 6)
METRICS.add_builtin("mask-adherence", "usbench.tasks.adherence:MaskAdherence")
METRICS.add_builtin("lesion-presence", "usbench.tasks.adherence:LesionPresence")
