"""Many writer processes on one store: nothing lost or duplicated; a writer killed mid-write
leaves a sound database with every committed rating intact."""

import multiprocessing as mp
import os
import signal
import time

from _study_fixtures import expected_rating, make_store, writer
from usbench.reader_study.store import RatingsStore

CTX = mp.get_context("fork")  # the parent holds no open connection when it forks


def test_concurrent_writers_lose_nothing(tmp_path):
    path = make_store(tmp_path / "r.sqlite", 8, 50)
    procs = [CTX.Process(target=writer, args=(str(path), f"r{r}", 50)) for r in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with RatingsStore(path) as s:
        rows = s.conn.execute("SELECT reader, item, rating, revisions FROM ratings").fetchall()
        assert s.integrity_ok()
    assert len(rows) == 400 and len({(r, i) for r, i, _, _ in rows}) == 400
    assert all(rating == expected_rating(r, i) and rev == 0 for r, i, rating, rev in rows)


def test_kill_during_write_keeps_committed(tmp_path):
    path = make_store(tmp_path / "r.sqlite", 1, 5000)
    log = tmp_path / "committed.log"
    p = CTX.Process(target=writer, args=(str(path), "r0", 5000, str(log), False))
    p.start()
    deadline = time.time() + 60
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 30):
        time.sleep(0.01)
    os.kill(p.pid, signal.SIGKILL)  # mid-loop, quite likely inside a transaction
    p.join(10)
    assert p.exitcode == -signal.SIGKILL
    committed = log.read_text().splitlines()
    with RatingsStore(path) as s:
        assert s.integrity_ok()
        stored = s.ratings_of("r0")
        # every rating the writer saw committed is there, with its value; at most one more made it
        assert set(committed) <= set(stored) and len(stored) - len(committed) in (0, 1)
        assert all(stored[i]["rating"] == expected_rating("r0", i) for i in stored)
        assert len(stored) < 5000
        # and the store still takes writes
        nxt = s.next_position("r0")
        assert s.rate("r0", f"it{nxt}", 3)
