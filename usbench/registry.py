"""Name → object registries, filled by built-ins and by entry points of third-party packages.

A built-in is named as ``"module:attr"`` and imported only when first asked for, so that
``usbench --help`` does not import torch. A plugin package registers under the entry-point group
(``usbench.generators``, ``usbench.metrics``, ``usbench.extractors``)::

    [project.entry-points."usbench.generators"]
    my-gan = "my_package.generator:MyGan"
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Callable, Generic, TypeVar

from usbench.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, group: str):
        self.kind = kind  # "generator", "metric", ... used in messages
        self.group = group
        self._lazy: dict[str, str] = {}
        self._loaded: dict[str, T] = {}
        self._scanned = False

    def add_builtin(self, name: str, target: str) -> None:
        """Register ``"module:attr"`` under ``name`` without importing it."""
        self._lazy[name] = target

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@GENERATORS.register("my-gen")``."""

        def deco(obj: T) -> T:
            self._loaded[name] = obj
            return obj

        return deco

    def _scan_entry_points(self) -> None:
        if self._scanned:
            return
        self._scanned = True
        for ep in entry_points(group=self.group):
            if ep.name not in self._lazy and ep.name not in self._loaded:
                self._lazy[ep.name] = ep.value

    def names(self) -> list[str]:
        self._scan_entry_points()
        return sorted(set(self._lazy) | set(self._loaded))

    def get(self, name: str) -> T:
        self._scan_entry_points()
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._lazy:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}", f"known {self.kind}s: {', '.join(self.names()) or 'none'}"
            )
        module, _, attr = self._lazy[name].partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        self._loaded[name] = obj
        return obj

    def __contains__(self, name: str) -> bool:
        self._scan_entry_points()
        return name in self._lazy or name in self._loaded
