"""Benchmark of the reader-study ratings store: N writer processes, each one reader rating its items.

Every rating is what the app does per click: ``mark_shown`` (one transaction) then ``rate`` (one
transaction, BEGIN IMMEDIATE, WAL, synchronous=NORMAL, or FULL with --fsync). Reports ratings/s in total and checks that
nothing was lost or duplicated.

    PYTHONPATH=. python bench/study_store.py --writers 16 --ratings 200
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import sqlite3
import tempfile
import time
from pathlib import Path

from usbench.reader_study.store import RatingsStore, SequenceItem


def expected(reader: str, item: str) -> int:
    return sum(map(ord, reader + item)) % 5 + 1


def _writer(path: str, reader: str, n: int, start, done) -> None:
    s = RatingsStore(path)
    start.wait()
    for i in range(n):
        s.mark_shown(reader, f"it{i}")
        s.rate(reader, f"it{i}", expected(reader, f"it{i}"))
    s.close()
    done.put(time.perf_counter())


def run(writers: int, ratings: int, folder: Path, fsync: bool = False) -> dict:
    path = folder / "bench.sqlite"
    with RatingsStore(path, create=True, fsync_each_rating=fsync) as s:
        for r in range(writers):
            s.add_reader(f"r{r}", f"tok{r}")
            s.set_sequence(f"r{r}", [SequenceItem(i, f"it{i}", f"img{i}", "main") for i in range(ratings)])
    ctx = mp.get_context("fork")
    start, done = ctx.Barrier(writers + 1), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(path), f"r{r}", ratings, start, done)) for r in range(writers)]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    ends = [done.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = max(ends) - t0
    con = sqlite3.connect(path)
    rows = con.execute("SELECT reader, item, rating FROM ratings").fetchall()
    integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
    con.close()
    total = writers * ratings
    wrong = sum(1 for r, i, v in rows if v != expected(r, i))
    return {
        "writers": writers, "ratings_per_writer": ratings, "stored": len(rows), "expected": total,
        "lost": total - len({(r, i) for r, i, _ in rows}), "duplicated": len(rows) - len({(r, i) for r, i, _ in rows}),
        "wrong_values": wrong, "integrity": integrity, "seconds": elapsed, "ratings_per_second": total / elapsed,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writers", type=int, default=16)
    ap.add_argument("--ratings", type=int, default=200, help="ratings per writer")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fsync", action="store_true", help="studies created with --fsync (synchronous=FULL)")
    ap.add_argument("--dir", type=Path, default=None, help="folder for the database (default: a temp folder under .)")
    a = ap.parse_args()
    print(f"{platform.platform()}, {mp.cpu_count()} CPUs, SQLite {sqlite3.sqlite_version}")
    for k in range(a.repeat):
        with tempfile.TemporaryDirectory(dir=a.dir or Path.cwd(), prefix=".bench-store-") as d:
            r = run(a.writers, a.ratings, Path(d), a.fsync)
        print(f"run {k + 1} ({'FULL' if a.fsync else 'NORMAL'}): {r['writers']} writers x {r['ratings_per_writer']} ratings: {r['ratings_per_second']:.0f} ratings/s "
              f"({r['seconds']:.2f} s), stored {r['stored']}/{r['expected']}, lost {r['lost']}, duplicated {r['duplicated']}, "
              f"wrong {r['wrong_values']}, integrity {r['integrity']}")


if __name__ == "__main__":
    main()
