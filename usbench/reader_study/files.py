"""Reading a study folder: its settings (``study.toml``), its key (``admin/key.csv``) and its store.

Its own module so that the builder, the audit and the analysis can all read a study without
importing each other.
"""

from __future__ import annotations

import csv
from pathlib import Path

from usbench.errors import InputError
from usbench.reader_study.store import DB_NAME, RatingsStore


def read_config(study: Path) -> dict:
    """The ``[study]`` table of ``study.toml``."""
    import tomllib

    path = Path(study) / "study.toml"
    if not path.is_file():
        raise InputError(f"{study} has no study.toml", "point to a folder made by `usbench study create`")
    return tomllib.loads(path.read_text())["study"]


def read_key(study: Path) -> list[dict]:
    """The admin key; only analysis and the admin page call this."""
    path = Path(study) / "admin" / "key.csv"
    if not path.is_file():
        raise InputError(f"the study {study} has no admin/key.csv", "the key is written by `usbench study create`; restore it from a backup")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["truth"] = int(r["truth"])
    return rows


def open_store(study: Path) -> RatingsStore:
    return RatingsStore(Path(study) / DB_NAME)
