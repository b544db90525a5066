"""The WAL checkpointer: with a writer's own checkpoints off, its thread copies the log into the database
file, keeps the log bounded by starting it over now and then, loses no commit, and says once when it keeps failing."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import pytest

from tacore.store.wal_checkpoint import WalCheckpointer, sqlite_file

PAGE = 4096


def test_a_writer_without_checkpoints_keeps_a_bounded_log_and_every_commit(tmp_path: Path) -> None:
    path = tmp_path / "hot.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA synchronous=NORMAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # as the order process's connections run
    writer.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, body BLOB)")
    checkpointer = WalCheckpointer(path, every_s=0.005, restart_frames=500).start()
    try:
        for n in range(3000):
            writer.execute("INSERT INTO t VALUES (?, randomblob(3000))", (n,))  # a page a commit
            if n % 100 == 0:
                time.sleep(0.01)  # let the checkpointer take turns
        time.sleep(0.1)
    finally:
        checkpointer.stop()
    assert checkpointer.checkpoints > 10 and checkpointer.restarts >= 1
    # without checkpoints the log would hold all 3,000+ pages; it started over near 500
    assert (tmp_path / "hot.db-wal").stat().st_size < 1500 * (PAGE + 24)
    writer.close()
    reader = sqlite3.connect(path)
    assert reader.execute("SELECT count(*), max(n) FROM t").fetchone() == (3000, 2999)
    reader.close()


def test_only_sqlite_files_are_checkpointed() -> None:
    assert sqlite_file("sqlite:////data/orders.db") == Path("/data/orders.db")
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql://u@h/db") is None


def test_a_checkpoint_that_keeps_failing_is_logged_once_not_every_turn(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    unopenable = tmp_path / "no-such-directory" / "orders.db"  # every turn fails to open it, as on a broken disk
    checkpointer = WalCheckpointer(unopenable, every_s=0.01).start()
    with caplog.at_level(logging.WARNING, logger="tacore.store"):
        time.sleep(0.5)  # about 50 failed turns
        checkpointer.stop()
    warnings = [r for r in caplog.records if "WAL checkpoint" in r.getMessage()]
    assert len(warnings) == 1 and "1 turn(s) in a row" in warnings[0].getMessage()
