"""Exports of a study's ratings.

* ``long``    — one row per rating: ``reader, case, source, generator, label, rating, seconds, order, timestamp``
  (plus ``block``, ``truth`` and ``comment``).
* ``mrmcaov`` — ``reader, treatment, case, truth, rating`` with integer case ids, the layout read by
  MRMCaov (R data frame), RJafroc's ``DfReadDataFile(format = "MRMC")`` for ``.csv`` and ``usbench study mrmc``.
  Treatments are the generators; real cases appear in every treatment (nested design).
* ``imrmc``   — the iMRMC input file: a header with NR, N0, N1, NM, then ``BEGIN DATA:``, truth rows
  ``-1,case,0,truth`` and score rows ``reader,case,modality,score``.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from usbench.errors import ConfigError
from usbench.imageset import atomic_write_text
from usbench.reader_study.analysis import LONG_COLUMNS, load_long, mrmc_table

FORMATS = ("long", "mrmcaov", "imrmc")


def long_csv(study: Path) -> str:
    df = load_long(study)
    cols = list(LONG_COLUMNS) + ["block", "truth", "comment"]
    return df[cols].to_csv(index=False, lineterminator="\n")


def _numbered(study: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    df = load_long(study)
    main = df[df["block"] == "main"]
    table = mrmc_table(main)
    ids = {c: i + 1 for i, c in enumerate(sorted(table["case"].unique()))}
    return table.assign(case=table["case"].map(ids)), ids


def mrmcaov_csv(study: Path) -> str:
    table, _ = _numbered(study)
    return table[["reader", "treatment", "case", "truth", "rating"]].to_csv(index=False, lineterminator="\n")


def imrmc_text(study: Path) -> str:
    table, _ = _numbered(study)
    truth = table.drop_duplicates("case")[["case", "truth"]].sort_values("case")
    buf = io.StringIO()
    buf.write("usbench reader study export (treatments = generators; real cases shared, synthetic cases nested)\n\n")
    buf.write(f"NR: {table['reader'].nunique()}\nN0: {int((truth['truth'] == 0).sum())}\nN1: {int((truth['truth'] == 1).sum())}\n")
    buf.write(f"NM: {table['treatment'].nunique()}\n\nBEGIN DATA:\n")
    for c, t in zip(truth["case"], truth["truth"]):
        buf.write(f"-1,{c},0,{t}\n")
    for r in table.sort_values(["reader", "treatment", "case"]).itertuples():
        buf.write(f"{r.reader},{r.case},{r.treatment},{r.rating}\n")
    return buf.getvalue()


def export(study: Path, fmt: str, out: Path) -> Path:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}", f"choose one of {', '.join(FORMATS)}")
    text = {"long": long_csv, "mrmcaov": mrmcaov_csv, "imrmc": imrmc_text}[fmt](study)
    atomic_write_text(Path(out), text)
    return Path(out)
