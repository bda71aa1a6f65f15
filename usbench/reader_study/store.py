"""The answer store: one SQLite file in WAL mode, one short transaction per answer, append-only.

Tables
------
``readers(reader, token_sha256, is_admin, expires_at, revoked_at, finished_at, details)``
    Only hashes of the secret tokens are stored, so the database alone cannot log anyone in. A
    token can expire (``expires_at``) or be revoked; ``finished_at`` locks a reader's answers once
    the last item is answered with none left open (an admin can unlock); ``details`` is the reader-details form (JSON).
``sequence(reader, position, item, image_id, block, task, image_id_b)``
    Each reader's seeded order. ``item`` is unique per reader; ``block`` is ``practice``, ``main``,
    ``repeat`` or ``2afc``; ``task`` is ``rate`` (5-point scale on ``image_id``) or ``2afc``
    (``image_id`` left, ``image_id_b`` right; the answer is 1 when the left one is called real).
``displays(id, reader, item, session, shown_at)``
    One row per time an item is put on a reader's screen. The *current display* of a reader is their
    latest row; only it can be answered, and only once. So a click drawn for an image that is no
    longer on screen (a fast double press, a second tab, a page from before a restart) is refused,
    and the time of an answer counts from its own display.
``answers(id, reader, item, display_id, value, comment, extras, shown_at, answered_at, seconds, revision)``
    Append-only (triggers forbid UPDATE and DELETE): every answer ever given. The current answer
    of an item is its latest row; ``revision`` counts from 0.
``events(id, at, reader, what, detail)``
    Reader management and unlocks, for the record.
``ratings`` (a view)
    The current answer per item, with ``revisions`` and the first answer beside it.

Each write is ``BEGIN IMMEDIATE … COMMIT`` with a busy timeout, so many processes can write at
once. WAL with ``synchronous=NORMAL`` (default) keeps every committed answer when a process is
killed; a study created with ``fsync_each_rating`` uses ``synchronous=FULL`` and also survives a
power cut, at the price of one fsync per answer. The database and its ``-wal``/``-shm`` files are
mode 0600 (SQLite gives the side files the mode of the database).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from usbench.errors import ConfigError, InputError, UsbenchError

DB_NAME = "ratings.sqlite"
COMMENT_MAX = 2000  # characters; a longer comment is refused, not cut
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS readers (
    reader TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, is_admin INTEGER NOT NULL DEFAULT 0,
    expires_at REAL, revoked_at REAL, finished_at REAL, details TEXT);
CREATE TABLE IF NOT EXISTS sequence (
    reader TEXT NOT NULL, position INTEGER NOT NULL, item TEXT NOT NULL, image_id TEXT NOT NULL,
    block TEXT NOT NULL, task TEXT NOT NULL DEFAULT 'rate', image_id_b TEXT,
    PRIMARY KEY (reader, position), UNIQUE (reader, item));
CREATE TABLE IF NOT EXISTS displays (
    id INTEGER PRIMARY KEY AUTOINCREMENT, reader TEXT NOT NULL, item TEXT NOT NULL, session TEXT,
    shown_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS displays_reader ON displays(reader, id);
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT, reader TEXT NOT NULL, item TEXT NOT NULL,
    display_id INTEGER NOT NULL UNIQUE REFERENCES displays(id),
    value INTEGER NOT NULL CHECK (value BETWEEN 1 AND 5), comment TEXT NOT NULL DEFAULT '',
    extras TEXT NOT NULL DEFAULT '{}', shown_at REAL NOT NULL, answered_at REAL NOT NULL, seconds REAL NOT NULL,
    revision INTEGER NOT NULL, UNIQUE (reader, item, revision));
CREATE TRIGGER IF NOT EXISTS answers_append_only_u BEFORE UPDATE ON answers
    BEGIN SELECT RAISE(ABORT, 'answers are append-only'); END;
CREATE TRIGGER IF NOT EXISTS answers_append_only_d BEFORE DELETE ON answers
    BEGIN SELECT RAISE(ABORT, 'answers are append-only'); END;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, reader TEXT, what TEXT NOT NULL, detail TEXT);
CREATE VIEW IF NOT EXISTS ratings AS
    SELECT a.reader, a.item, s.image_id, a.value AS rating, a.comment, a.extras, a.shown_at,
           a.answered_at AS rated_at, a.seconds, a.revision AS revisions,
           f.value AS first_rating, f.comment AS first_comment, f.seconds AS first_seconds, f.answered_at AS first_rated_at
    FROM answers a
    JOIN sequence s ON s.reader = a.reader AND s.item = a.item
    JOIN answers f ON f.reader = a.reader AND f.item = a.item AND f.revision = 0
    WHERE a.revision = (SELECT MAX(revision) FROM answers m WHERE m.reader = a.reader AND m.item = a.item);
CREATE TRIGGER IF NOT EXISTS ratings_read_only INSTEAD OF INSERT ON ratings
    BEGIN SELECT RAISE(ABORT, 'ratings is a view of the answer log; write through RatingsStore.answer'); END;
"""
SCHEMA_VERSION = "2"


class StaleAnswerError(UsbenchError):
    """An answer for an image that is not (or no longer) on the reader's screen."""


class LockedError(UsbenchError):
    """An answer from a reader who has finished (their answers are locked)."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SequenceItem:
    position: int
    item: str
    image_id: str
    block: str
    task: str = "rate"
    image_id_b: str | None = None


@dataclass(frozen=True)
class Display:
    id: int
    reader: str
    item: str
    shown_at: float


@dataclass(frozen=True)
class Reader:
    reader: str
    is_admin: bool


def _private_file(path: Path) -> None:
    """Create ``path`` with mode 0600 before SQLite opens it (its -wal/-shm then get 0600 too)."""
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if p.exists() and p.stat().st_mode & 0o077:
            os.chmod(p, 0o600)


class RatingsStore:
    """Access to one study's database. Cheap to open; open one per process (or per Streamlit run)."""

    def __init__(self, path: str | Path, create: bool = False, timeout: float = 60.0, fsync_each_rating: bool | None = None):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise InputError(f"the study database {self.path} does not exist", "create the study with `usbench study create`")
        _private_file(self.path)
        self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        if create:
            self.conn.executescript(SCHEMA)
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
            if fsync_each_rating is not None:
                self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('fsync_each_rating', ?)", (str(int(fsync_each_rating)),))
        elif self._meta("schema") != SCHEMA_VERSION:
            raise InputError(f"{self.path} was written by an older usbench (no answer log)",
                             "recreate the study with this version of `usbench study create`")
        self.fsync_each_rating = self._meta("fsync_each_rating") == "1"
        # WAL + NORMAL: a commit is in the WAL (OS cache) when it returns, so a killed process loses nothing
        # committed; only a power cut can drop the last commits. FULL also fsyncs every commit.
        self.conn.execute(f"PRAGMA synchronous={'FULL' if self.fsync_each_rating else 'NORMAL'}")
        _private_file(self.path)

    def _meta(self, key: str) -> str | None:
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        except sqlite3.OperationalError:  # no meta table: not a usbench store
            return None
        return row[0] if row else None

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

    def _event(self, c: sqlite3.Connection, reader: str | None, what: str, detail: str = "") -> None:
        c.execute("INSERT INTO events(at, reader, what, detail) VALUES (?,?,?,?)", (time.time(), reader, what, detail))

    # -- readers -----------------------------------------------------------------------------
    def add_reader(self, reader: str, token: str, is_admin: bool = False, expires_at: float | None = None) -> None:
        with self._tx() as c:
            if c.execute("SELECT 1 FROM readers WHERE reader=?", (reader,)).fetchone():
                raise ConfigError(f"the study already has a reader {reader!r}", "choose another name, or `study readers reissue` for a new link")
            c.execute("INSERT INTO readers(reader, token_sha256, is_admin, expires_at) VALUES (?,?,?,?)",
                      (reader, token_hash(token), int(is_admin), expires_at))
            self._event(c, reader, "add", "admin" if is_admin else "")

    def _known(self, c: sqlite3.Connection, reader: str) -> None:
        if not c.execute("SELECT 1 FROM readers WHERE reader=?", (reader,)).fetchone():
            names = ", ".join(self.readers()) or "none"
            raise InputError(f"the study has no reader {reader!r}", f"readers: {names}")

    def revoke(self, reader: str) -> None:
        """The reader's link stops working at once; their answers stay."""
        with self._tx() as c:
            self._known(c, reader)
            c.execute("UPDATE readers SET revoked_at=? WHERE reader=?", (time.time(), reader))
            self._event(c, reader, "revoke")

    def reissue(self, reader: str, token: str, expires_at: float | None = None) -> None:
        """A new token for ``reader`` (the old link stops working); answers and place are kept."""
        with self._tx() as c:
            self._known(c, reader)
            c.execute("UPDATE readers SET token_sha256=?, revoked_at=NULL, expires_at=? WHERE reader=?",
                      (token_hash(token), expires_at, reader))
            self._event(c, reader, "reissue")

    def unlock(self, reader: str) -> None:
        """Let a finished reader change answers again (an admin decision, logged)."""
        with self._tx() as c:
            self._known(c, reader)
            c.execute("UPDATE readers SET finished_at=NULL WHERE reader=?", (reader,))
            self._event(c, reader, "unlock")

    def set_details(self, reader: str, details: dict) -> None:
        with self._tx() as c:
            c.execute("UPDATE readers SET details=? WHERE reader=?", (json.dumps(details, sort_keys=True), reader))

    def details(self, reader: str) -> dict | None:
        row = self.conn.execute("SELECT details FROM readers WHERE reader=?", (reader,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def finished(self, reader: str) -> bool:
        row = self.conn.execute("SELECT finished_at FROM readers WHERE reader=?", (reader,)).fetchone()
        return bool(row and row[0] is not None)

    def set_sequence(self, reader: str, items: list[SequenceItem]) -> None:
        with self._tx() as c:
            c.executemany(
                "INSERT INTO sequence(reader, position, item, image_id, block, task, image_id_b) VALUES (?,?,?,?,?,?,?)",
                [(reader, s.position, s.item, s.image_id, s.block, s.task, s.image_id_b) for s in items],
            )

    # -- reading ---------------------------------------------------------------------------
    def reader_for_token(self, token: str | None, now: float | None = None) -> tuple[str, bool] | None:
        """(reader, is_admin) for a valid, unrevoked, unexpired token, else None. Compares hashes only."""
        if not token:
            return None
        row = self.conn.execute("SELECT reader, is_admin, expires_at, revoked_at FROM readers WHERE token_sha256=?",
                                (token_hash(token),)).fetchone()
        if not row or row[3] is not None:
            return None
        if row[2] is not None and (time.time() if now is None else now) > row[2]:
            return None
        return row[0], bool(row[1])

    def readers(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT reader FROM readers WHERE is_admin=0 ORDER BY reader")]

    def reader_table(self) -> list[dict]:
        cur = self.conn.execute("SELECT reader, expires_at, revoked_at, finished_at, details FROM readers WHERE is_admin=0 ORDER BY reader")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def sequence(self, reader: str) -> list[SequenceItem]:
        rows = self.conn.execute(
            "SELECT position, item, image_id, block, task, image_id_b FROM sequence WHERE reader=? ORDER BY position", (reader,)
        ).fetchall()
        return [SequenceItem(*r) for r in rows]

    def ratings_of(self, reader: str) -> dict[str, dict]:
        """The current answer of every answered item of ``reader``."""
        cur = self.conn.execute(
            "SELECT item, image_id, rating, comment, extras, shown_at, rated_at, seconds, revisions, first_rating, first_comment "
            "FROM ratings WHERE reader=?", (reader,)
        )
        cols = [d[0] for d in cur.description]
        return {r[0]: dict(zip(cols, r)) for r in cur.fetchall()}

    def all_ratings(self) -> list[dict]:
        """Current answers of everyone, with the first answer of each item beside them."""
        cur = self.conn.execute(
            "SELECT r.*, s.position, s.block, s.task, s.image_id_b FROM ratings r "
            "JOIN sequence s ON s.reader=r.reader AND s.item=r.item ORDER BY r.reader, s.position"
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def answer_log(self, reader: str | None = None) -> list[dict]:
        """Every answer ever given (oldest first)."""
        q = "SELECT * FROM answers" + (" WHERE reader=?" if reader else "") + " ORDER BY id"
        cur = self.conn.execute(q, (reader,) if reader else ())
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def progress(self) -> list[dict]:
        """Per reader: items outside practice and how many are answered, practice separately, state."""
        rows = self.conn.execute(
            "SELECT s.reader, SUM(s.block != 'practice'), SUM(s.block != 'practice' AND r.item IS NOT NULL), "
            "SUM(s.block = 'practice'), SUM(s.block = 'practice' AND r.item IS NOT NULL), MAX(r.rated_at), "
            "d.finished_at, d.revoked_at FROM sequence s JOIN readers d ON d.reader = s.reader "
            "LEFT JOIN ratings r ON r.reader=s.reader AND r.item=s.item GROUP BY s.reader ORDER BY s.reader"
        ).fetchall()
        return [{"reader": r, "total": int(n), "rated": int(k or 0), "practice_total": int(pn or 0), "practice_rated": int(pk or 0),
                 "last_rated_at": t, "finished": f is not None, "revoked": rv is not None}
                for r, n, k, pn, pk, t, f, rv in rows]

    def next_position(self, reader: str) -> int:
        """Position of the first unanswered item (len(sequence) when all are answered)."""
        row = self.conn.execute(
            "SELECT MIN(s.position) FROM sequence s LEFT JOIN ratings r ON r.reader=s.reader AND r.item=s.item "
            "WHERE s.reader=? AND r.item IS NULL", (reader,)
        ).fetchone()
        if row[0] is not None:
            return int(row[0])
        return int(self.conn.execute("SELECT COUNT(*) FROM sequence WHERE reader=?", (reader,)).fetchone()[0])

    # -- displays and answers ----------------------------------------------------------------
    def show(self, reader: str, item: str, session: str | None = None, now: float | None = None) -> Display:
        """Put ``item`` on ``reader``'s screen and return the display an answer must carry.

        A rerun of the same page (same session, same item, not yet answered) keeps its display, so a
        refresh of the widgets does not reset the clock; a new session (reload, restart, other
        browser) or another item gets a new display, which becomes the only one that can be answered.
        """
        now = time.time() if now is None else now
        with self._tx() as c:
            if not c.execute("SELECT 1 FROM sequence WHERE reader=? AND item=?", (reader, item)).fetchone():
                raise InputError(f"item {item} is not in the sequence of reader {reader}", "a reader sees only their own items")
            last = c.execute("SELECT d.id, d.item, d.session, d.shown_at, a.id FROM displays d LEFT JOIN answers a ON a.display_id = d.id "
                             "WHERE d.reader=? ORDER BY d.id DESC LIMIT 1", (reader,)).fetchone()
            if last and last[1] == item and last[2] == session and last[4] is None:
                return Display(last[0], reader, item, last[3])
            cur = c.execute("INSERT INTO displays(reader, item, session, shown_at) VALUES (?,?,?,?)", (reader, item, session, now))
            return Display(int(cur.lastrowid), reader, item, now)

    def mark_shown(self, reader: str, item: str, now: float | None = None, session: str | None = None) -> float:
        """:meth:`show`, returning the time the current display began."""
        return self.show(reader, item, session, now).shown_at

    def answer(self, reader: str, display_id: int, item: str, value: int, comment: str = "", extras: dict | None = None,
               allow_change: bool = True, now: float | None = None, max_value: int = 5) -> bool:
        """Append one answer in its own transaction. Returns True when it was written.

        Refused with :class:`StaleAnswerError` unless ``display_id`` is the reader's current display
        and shows ``item``, and not yet answered; with :class:`LockedError` when the reader has
        finished. An answer equal to the current one (value, comment, extras) is not logged again
        (returns False); a changed one is logged as the next revision when ``allow_change``.
        The reader is marked finished (locked) by an answer to the last item when no item is left
        unanswered; after an admin unlock the reader can revise freely until they answer the last item again.
        """
        value = int(value)
        if not 1 <= value <= max_value:
            raise InputError(f"answer {value} is outside 1..{max_value}", "use the scale of the task")
        comment = (comment or "").strip()
        if len(comment) > COMMENT_MAX:
            raise InputError(f"the comment has {len(comment)} characters, more than {COMMENT_MAX}", "shorten it")
        extras_json = json.dumps(extras or {}, sort_keys=True)
        now = time.time() if now is None else now
        with self._tx() as c:
            if self.finished(reader):
                raise LockedError(f"reader {reader} has finished; answers are locked", "an admin can unlock with `usbench study readers unlock`")
            cur = c.execute("SELECT d.id, d.item, d.shown_at, a.id FROM displays d LEFT JOIN answers a ON a.display_id = d.id "
                            "WHERE d.reader=? ORDER BY d.id DESC LIMIT 1", (reader,)).fetchone()
            if cur is None or cur[0] != display_id or cur[1] != item or cur[3] is not None:
                raise StaleAnswerError(f"answer for {item} refused: that image is no longer on the screen of {reader}",
                                       "the page was redrawn, answered already or opened elsewhere; answer the image shown now")
            prev = c.execute("SELECT value, comment, extras, revision FROM answers WHERE reader=? AND item=? ORDER BY revision DESC LIMIT 1",
                             (reader, item)).fetchone()
            if prev is not None and ((prev[0], prev[1], prev[2]) == (value, comment, extras_json) or not allow_change):
                return False
            revision = 0 if prev is None else prev[3] + 1
            c.execute("INSERT INTO answers(reader, item, display_id, value, comment, extras, shown_at, answered_at, seconds, revision) "
                      "VALUES (?,?,?,?,?,?,?,?,?,?)",
                      (reader, item, display_id, value, comment, extras_json, cur[2], now, max(now - cur[2], 0.0), revision))
            last = c.execute("SELECT item FROM sequence WHERE reader=? ORDER BY position DESC LIMIT 1", (reader,)).fetchone()[0]
            left = c.execute("SELECT COUNT(*) FROM sequence s WHERE s.reader=? AND NOT EXISTS "
                             "(SELECT 1 FROM answers a WHERE a.reader=s.reader AND a.item=s.item)", (reader,)).fetchone()[0] \
                if item == last else 1
            if left == 0:  # the reader reached the end: finished (after an unlock, again at the end)
                c.execute("UPDATE readers SET finished_at=? WHERE reader=?", (now, reader))
                self._event(c, reader, "finished")
            return True

    def rate(self, reader: str, item: str, rating: int, comment: str = "", allow_change: bool = True,
             now: float | None = None, extras: dict | None = None) -> bool:
        """Show-and-answer in one call (scripts, simulations): answers the current display when it
        shows ``item`` and is open, else opens a new display now. Same return value as :meth:`answer`."""
        now = time.time() if now is None else now
        row = self.conn.execute("SELECT value, comment FROM answers WHERE reader=? AND item=? ORDER BY revision DESC LIMIT 1",
                                (reader, item)).fetchone()
        prev = {"rating": row[0], "comment": row[1]} if row else None
        if prev is not None and (prev["rating"], prev["comment"]) == (int(rating), (comment or "").strip()) and extras is None:
            return False  # a resubmission: not logged, and not refused even after the reader finished
        if prev is not None and not allow_change:
            return False
        d = self.show(reader, item, session=self._current_session(reader, item), now=now)
        return self.answer(reader, d.id, item, rating, comment, extras, allow_change, now)

    def _current_session(self, reader: str, item: str) -> str | None:
        row = self.conn.execute("SELECT item, session FROM displays WHERE reader=? ORDER BY id DESC LIMIT 1", (reader,)).fetchone()
        return row[1] if row and row[0] == item else None

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
