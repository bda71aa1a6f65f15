"""Exports of a study's answers.

* ``long``    — one row per (reader, item) of the 5-point task: ``reader, case, source, generator, label,
  rating, seconds, order, timestamp`` (the final answer), then ``item, block, truth, comment``, the
  first answer (``first_rating, first_comment, first_seconds, first_timestamp``), ``revisions``, the
  reader details (``reader_role, reader_years, reader_us_volume``) and one ``q_<key>`` column per
  extra question.
* ``log``     — the append-only answer log: every answer ever given, with its display time.
* ``afc``     — one row per (reader, pair) of the 2AFC task.
* ``mrmcaov`` — ``reader, treatment, case, truth, rating`` with integer case ids, the layout read by
  MRMCaov (R data frame), RJafroc's ``DfReadDataFile(format = "MRMC")`` for ``.csv`` and ``usbench study mrmc``.
  Treatments are the generators; real cases appear in every treatment (nested design).
* ``imrmc``   — the iMRMC input file: a header with NR, N0, N1, NM, then ``BEGIN DATA:``, truth rows
  ``-1,case,0,truth`` and score rows ``reader,case,modality,score``.

Every text cell of a CSV export that a spreadsheet would read as a formula (starting with ``=``,
``+``, ``-``, ``@``, tab or carriage return) is prefixed with ``'`` (OWASP, CSV injection).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from usbench.errors import ConfigError
from usbench.imageset import atomic_write_text
from usbench.reader_study.analysis import load_afc, load_long, mrmc_table
from usbench.reader_study.builder import open_store

FORMATS = ("long", "log", "afc", "mrmcaov", "imrmc")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """A text cell that would start a spreadsheet formula, made inert with a leading ``'`` (OWASP)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_csv(df: pd.DataFrame) -> str:
    """CSV of ``df`` with every text cell neutralised (numbers are left alone: -0.5 stays a number)."""
    out = df.copy()
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]):  # object or string columns (pandas 2 and 3)
            out[c] = out[c].map(neutralise)
    out.columns = [neutralise(str(c)) for c in out.columns]
    # every text cell quoted: a CR inside a comment stays inside its cell with a "\n" line end
    return out.to_csv(index=False, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)


def long_csv(study: Path) -> str:
    return safe_csv(load_long(study))


def log_csv(study: Path) -> str:
    with open_store(study) as s:
        log = pd.DataFrame(s.answer_log())
    return safe_csv(log)


def afc_csv(study: Path) -> str:
    return safe_csv(load_afc(study))


def _numbered(study: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    df = load_long(study)
    main = df[df["block"] == "main"]
    table = mrmc_table(main)
    ids = {c: i + 1 for i, c in enumerate(sorted(table["case"].unique()))}
    return table.assign(case=table["case"].map(ids)), ids


def mrmcaov_csv(study: Path) -> str:
    table, _ = _numbered(study)
    return safe_csv(table[["reader", "treatment", "case", "truth", "rating"]])


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


WRITERS = {"long": long_csv, "log": log_csv, "afc": afc_csv, "mrmcaov": mrmcaov_csv, "imrmc": imrmc_text}


def export(study: Path, fmt: str, out: Path) -> Path:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}", f"choose one of {', '.join(FORMATS)}")
    text = WRITERS[fmt](study)
    atomic_write_text(Path(out), text)
    return Path(out)
