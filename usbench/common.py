"""Helpers and constants shared by every layer: one home, so each idea has one definition.

- :data:`SEED_STRIDE`: request ``i`` of a run with seed ``s`` draws with seed ``s * SEED_STRIDE + i``
  (distinct across the seeds of different runs); the fine-tuning recipes use the same rule.
- :data:`LABEL_ORDER`: the order labels are listed in (rows of tables, grids, plots).
- :func:`config_from_dict`: a dataclass from a plain dict (a TOML table), refusing unknown keys and
  wrong types in one line.
- :func:`fingerprint_of`: the sha256 behind every cache key.
- :class:`ProgressBar` / :func:`track`: the one progress bar (rich, on stderr, gone when done).
- :func:`usable_cores`: how many cores this process may use (the affinity mask).
- :func:`single_blas_thread` / :func:`one_thread_per_worker`: one BLAS (and SimpleITK) thread
  where many small array operations run, or one worker process per core already runs.
"""

from __future__ import annotations

import sys

import hashlib
import json
from dataclasses import fields
from typing import Any, Iterable, Iterator, TypeVar

from usbench.errors import ConfigError

T = TypeVar("T")

SEED_STRIDE = 1_000_003
LABEL_ORDER = ("normal", "benign", "malignant")
SUBSET_ALL = "all"


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def single_blas_thread():
    """A context in which BLAS runs on one thread. Many small matrix products and LAPACK calls run
    fastest so: OpenBLAS threads spin between calls, and on this project's 2-core machine that
    made a 500×500 eigvalsh 100× slower and the radiomic features of one worker 2.7× slower."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def one_thread_per_worker() -> None:
    """Initializer of a pool with one worker process per core: each worker's BLAS and SimpleITK
    run on one thread (their own threads on top of the pool's processes only contend: measured,
    2 radiomics workers with 2 OpenBLAS threads each did 3.7× less work than with one)."""
    import sys

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")  # for the life of the worker
    if "SimpleITK" in sys.modules:
        sys.modules["SimpleITK"].ProcessObject.SetGlobalDefaultNumberOfThreads(1)


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


class ProgressBar:
    """The one progress bar: rich, on stderr, transient; a no-op when not ``enabled``.

    ``with ProgressBar(n, "doing x", enabled) as tick: ... tick()``, or ``bar.advance()`` then
    ``bar.close()`` where a ``with`` block does not fit. ``update(completed=, total=,
    description=, **fields)`` sets rather than adds; ``fields`` fill ``{task.fields[...]}`` columns
    given as ``extra_columns`` (e.g. the loss of a training step)."""

    def __init__(self, total: int | None, description: str, enabled: bool = True, completed: int = 0,
                 extra_columns: tuple[str, ...] = (), **fields: Any):
        self._bar = None
        if not enabled or not sys.stderr.isatty():  # a bar is for a person at a terminal; piped, it is noise
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                             *(TextColumn(c) for c in extra_columns), TimeRemainingColumn(), transient=True,
                             console=Console(stderr=True))
        self._bar.start()
        self._task = self._bar.add_task(description, total=total, completed=completed, **fields)

    def advance(self, n: int = 1, description: str | None = None, **fields: Any) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=n, **({"description": description} if description else {}), **fields)

    __call__ = advance

    def update(self, completed: int | None = None, total: int | None = None, description: str | None = None,
               **fields: Any) -> None:
        if self._bar is not None:
            given = {"completed": completed, "total": total, "description": description}
            self._bar.update(self._task, **{k: v for k, v in given.items() if v is not None}, **fields)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def track(items: Iterable[T], total: int, description: str, enabled: bool = True) -> Iterator[T]:
    """``items`` unchanged, advancing a :class:`ProgressBar` as they are consumed."""
    with ProgressBar(total, description, enabled) as bar:
        for x in items:
            yield x
            bar.advance()


__all__ = ["LABEL_ORDER", "SEED_STRIDE", "SUBSET_ALL", "config_from_dict", "fingerprint_of", "label_rank", "ProgressBar", "track"]
