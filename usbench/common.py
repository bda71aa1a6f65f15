"""Helpers and constants shared by every layer: one home, so each idea has one definition.

- :data:`SEED_STRIDE`: request ``i`` of a run with seed ``s`` draws with seed ``s * SEED_STRIDE + i``
  (distinct across the seeds of different runs); the fine-tuning recipes use the same rule.
- :data:`LABEL_ORDER`: the order labels are listed in (rows of tables, grids, plots).
- :func:`config_from_dict`: a dataclass from a plain dict (a TOML table), refusing unknown keys and
  wrong types in one line.
- :func:`fingerprint_of`: the sha256 behind every cache key.
- :func:`progress_bar`: the one progress bar (rich, on stderr, gone when done).
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import fields
from typing import Any, Callable, Iterator

from usbench.errors import ConfigError

SEED_STRIDE = 1_000_003
LABEL_ORDER = ("normal", "benign", "malignant")
SUBSET_ALL = "all"


def label_rank(label: str) -> int:
    """Sort key of a subset name: ``all`` first, then :data:`LABEL_ORDER`, then the rest."""
    if label == SUBSET_ALL:
        return 0
    return 1 + LABEL_ORDER.index(label) if label in LABEL_ORDER else 1 + len(LABEL_ORDER)


def config_from_dict(cls: type, config: dict[str, Any], where: str) -> Any:
    """Build dataclass ``cls`` from ``config``, refusing unknown keys and wrong types in one line."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}", f"known keys: {', '.join(sorted(known))}")
    defaults = cls()
    clean = {}
    for key, value in config.items():
        want = type(getattr(defaults, key))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if getattr(defaults, key) is not None and (not isinstance(value, want) or (want is int and isinstance(value, bool))):
            raise ConfigError(
                f"{where}: {key} must be {want.__name__}, got {type(value).__name__} {value!r}",
                "fix the value in the config file or flag",
            )
        clean[key] = value
    return cls(**clean)


def fingerprint_of(*parts: Any) -> str:
    """sha256 of a JSON rendering of ``parts`` (dataclasses as dicts), for cache keys."""

    def default(o: Any) -> Any:
        if hasattr(o, "__dataclass_fields__"):
            return {f.name: getattr(o, f.name) for f in fields(o)}
        return str(o)

    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=default).encode()).hexdigest()


@contextmanager
def progress_bar(total: int | None, description: str, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """A transient rich bar on stderr; yields ``advance(n=1, description=None)``. Disabled: a no-op."""
    if not enabled:
        yield lambda n=1, description=None: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1, description: str | None = None) -> None:
            bar.update(task, advance=n, **({"description": description} if description else {}))

        yield advance


__all__ = ["LABEL_ORDER", "SEED_STRIDE", "SUBSET_ALL", "config_from_dict", "fingerprint_of", "label_rank", "progress_bar"]
