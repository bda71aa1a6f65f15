"""The ratings store: one SQLite file in WAL mode, one short transaction per rating.

Tables
------
``readers(reader, token_sha256, is_admin)``
    Only hashes of the secret tokens are stored, so the database alone cannot log anyone in.
``sequence(reader, position, item, image_id, block)``
    Each reader's seeded order. ``item`` is unique per reader (a repeated image gets ``<id>~2``);
    ``block`` is ``practice``, ``main`` or ``repeat``.
``shown(reader, item, first_shown_at)``
    Server-side time the item was first shown (kept on refresh: the first showing counts).
``ratings(reader, item, image_id, rating, comment, shown_at, rated_at, seconds, revisions)``
    ``UNIQUE(reader, item)``: a resubmission of the same answer is a no-op; a changed answer (when
    the study allows going back) updates the row and counts a revision.

Each write is ``BEGIN IMMEDIATE … COMMIT`` with a busy timeout, so many processes can write at
once. WAL with ``synchronous=NORMAL`` (default) keeps every committed rating when a process is killed;
a study created with ``fsync_each_rating`` uses ``synchronous=FULL`` and also survives a power cut,
at the price of one fsync per rating.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from usbench.errors import InputError

DB_NAME = "ratings.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS readers (
    reader TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, is_admin INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS sequence (
    reader TEXT NOT NULL, position INTEGER NOT NULL, item TEXT NOT NULL, image_id TEXT NOT NULL,
    block TEXT NOT NULL, PRIMARY KEY (reader, position), UNIQUE (reader, item));
CREATE TABLE IF NOT EXISTS shown (
    reader TEXT NOT NULL, item TEXT NOT NULL, first_shown_at REAL NOT NULL, PRIMARY KEY (reader, item));
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT, reader TEXT NOT NULL, item TEXT NOT NULL, image_id TEXT NOT NULL,
    rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5), comment TEXT NOT NULL DEFAULT '',
    shown_at REAL, rated_at REAL NOT NULL, seconds REAL, revisions INTEGER NOT NULL DEFAULT 0,
    UNIQUE (reader, item));
"""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SequenceItem:
    position: int
    item: str
    image_id: str
    block: str


class RatingsStore:
    """Access to one study's database. Cheap to open; open one per process (or per Streamlit session)."""

    def __init__(self, path: str | Path, create: bool = False, timeout: float = 60.0, fsync_each_rating: bool | None = None):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise InputError(f"the study database {self.path} does not exist", "create the study with `usbench study create`")
        self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        if create:
            self.conn.executescript(SCHEMA)
            if fsync_each_rating is not None:
                self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('fsync_each_rating', ?)", (str(int(fsync_each_rating)),))
        row = self.conn.execute("SELECT value FROM meta WHERE key='fsync_each_rating'").fetchone() if self._has_meta() else None
        self.fsync_each_rating = bool(int(row[0])) if row else False
        # WAL + NORMAL: a commit is in the WAL (OS cache) when it returns, so a killed process loses nothing
        # committed; only a power cut can drop the last commits. FULL also fsyncs every commit.
        self.conn.execute(f"PRAGMA synchronous={'FULL' if self.fsync_each_rating else 'NORMAL'}")

    def _has_meta(self) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone() is not None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "RatingsStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- setup (by the builder) ------------------------------------------------------------
    def add_reader(self, reader: str, token: str, is_admin: bool = False) -> None:
        with self._tx() as c:
            c.execute("INSERT INTO readers(reader, token_sha256, is_admin) VALUES (?,?,?)", (reader, token_hash(token), int(is_admin)))

    def set_sequence(self, reader: str, items: list[SequenceItem]) -> None:
        with self._tx() as c:
            c.executemany(
                "INSERT INTO sequence(reader, position, item, image_id, block) VALUES (?,?,?,?,?)",
                [(reader, s.position, s.item, s.image_id, s.block) for s in items],
            )

    # -- reading ---------------------------------------------------------------------------
    def reader_for_token(self, token: str | None) -> tuple[str, bool] | None:
        """(reader, is_admin) for a valid token, else None. Compares hashes only."""
        if not token:
            return None
        row = self.conn.execute("SELECT reader, is_admin FROM readers WHERE token_sha256=?", (token_hash(token),)).fetchone()
        return (row[0], bool(row[1])) if row else None

    def readers(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT reader FROM readers WHERE is_admin=0 ORDER BY reader")]

    def sequence(self, reader: str) -> list[SequenceItem]:
        rows = self.conn.execute(
            "SELECT position, item, image_id, block FROM sequence WHERE reader=? ORDER BY position", (reader,)
        ).fetchall()
        return [SequenceItem(*r) for r in rows]

    def ratings_of(self, reader: str) -> dict[str, dict]:
        cur = self.conn.execute(
            "SELECT item, image_id, rating, comment, shown_at, rated_at, seconds, revisions FROM ratings WHERE reader=?", (reader,)
        )
        cols = [d[0] for d in cur.description]
        return {r[0]: dict(zip(cols, r)) for r in cur.fetchall()}

    def all_ratings(self) -> list[dict]:
        cur = self.conn.execute(
            "SELECT r.reader, r.item, r.image_id, r.rating, r.comment, r.shown_at, r.rated_at, r.seconds, r.revisions, "
            "s.position, s.block FROM ratings r JOIN sequence s ON s.reader=r.reader AND s.item=r.item ORDER BY r.reader, s.position"
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def progress(self) -> list[dict]:
        """Per reader: items in the sequence, rated, last rating time."""
        rows = self.conn.execute(
            "SELECT s.reader, COUNT(*), COUNT(r.item), MAX(r.rated_at) FROM sequence s "
            "LEFT JOIN ratings r ON r.reader=s.reader AND r.item=s.item GROUP BY s.reader ORDER BY s.reader"
        ).fetchall()
        return [{"reader": r, "total": n, "rated": k, "last_rated_at": t} for r, n, k, t in rows]

    def next_position(self, reader: str) -> int:
        """Position of the first unrated item (len(sequence) when all are rated)."""
        row = self.conn.execute(
            "SELECT MIN(s.position) FROM sequence s LEFT JOIN ratings r ON r.reader=s.reader AND r.item=s.item "
            "WHERE s.reader=? AND r.item IS NULL", (reader,)
        ).fetchone()
        if row[0] is not None:
            return int(row[0])
        return int(self.conn.execute("SELECT COUNT(*) FROM sequence WHERE reader=?", (reader,)).fetchone()[0])

    # -- writing ---------------------------------------------------------------------------
    def mark_shown(self, reader: str, item: str, now: float | None = None) -> float:
        """Record the first time ``item`` was shown to ``reader``; return that time."""
        now = time.time() if now is None else now
        with self._tx() as c:
            c.execute("INSERT OR IGNORE INTO shown(reader, item, first_shown_at) VALUES (?,?,?)", (reader, item, now))
            return float(c.execute("SELECT first_shown_at FROM shown WHERE reader=? AND item=?", (reader, item)).fetchone()[0])

    def rate(self, reader: str, item: str, rating: int, comment: str = "", allow_change: bool = True,
             now: float | None = None) -> bool:
        """Store one rating in its own transaction. Returns True when a row was written or changed.

        Idempotent: the same answer again changes nothing. A different answer replaces the old one
        only when ``allow_change`` (the study lets readers go back); otherwise the first one stays.
        """
        rating = int(rating)
        if not 1 <= rating <= 5:
            raise InputError(f"rating {rating} is outside 1..5", "use the 5-point scale")
        now = time.time() if now is None else now
        with self._tx() as c:
            seq = c.execute("SELECT image_id FROM sequence WHERE reader=? AND item=?", (reader, item)).fetchone()
            if seq is None:
                raise InputError(f"item {item} is not in the sequence of reader {reader}", "a reader rates only their own items")
            shown = c.execute("SELECT first_shown_at FROM shown WHERE reader=? AND item=?", (reader, item)).fetchone()
            shown_at = float(shown[0]) if shown else None
            seconds = None if shown_at is None else max(now - shown_at, 0.0)
            old = c.execute("SELECT rating, comment FROM ratings WHERE reader=? AND item=?", (reader, item)).fetchone()
            if old is None:
                c.execute(
                    "INSERT INTO ratings(reader, item, image_id, rating, comment, shown_at, rated_at, seconds) VALUES (?,?,?,?,?,?,?,?)",
                    (reader, item, seq[0], rating, comment, shown_at, now, seconds),
                )
                return True
            if (old[0], old[1]) == (rating, comment) or not allow_change:
                return False
            c.execute(
                "UPDATE ratings SET rating=?, comment=?, revisions=revisions+1 WHERE reader=? AND item=?",
                (rating, comment, reader, item),
            )
            return True

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
