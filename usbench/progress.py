"""Progress bars on stderr for the phases that take more than a few seconds.

The CLI points Rich's default console at stderr (``usbench.cli.main``), so a bar never writes to
stdout, and turns them off when stderr is not a terminal; ``--quiet`` passes ``enabled=False``.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator


@contextlib.contextmanager
def steps(total: int, description: str, enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A bar of ``total`` steps; the yielded function starts the next step and names it."""
    if not enabled or total <= 0:
        yield lambda what: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True) as bar:
        task = bar.add_task(description, total=total)
        started = [False]

        def step(what: str) -> None:
            if started[0]:
                bar.advance(task)
            started[0] = True
            bar.update(task, description=f"{description}: {what}")

        yield step
