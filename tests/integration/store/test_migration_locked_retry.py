"""A process whose schema check meets "database is locked" on SQLite (another process holds the file past the
busy timeout while it starts) retries and ends at the head, instead of failing its start."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from tacore.store.migrate import HEAD_REVISION, current_revision, upgrade_schema
from tacore.store.request_log import make_engine


def test_a_schema_check_that_meets_a_locked_database_retries_and_ends_at_the_head(tmp_path: Path) -> None:
    path = tmp_path / "tacore.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")  # past the 5 s busy timeout of the engine's connections
    released = threading.Timer(6.0, holder.execute, ("COMMIT",))
    released.start()
    engine = make_engine(f"sqlite:///{path}")
    try:
        started = time.monotonic()
        upgrade_schema(engine)
        assert time.monotonic() - started >= 5.0  # it did meet the lock
        assert current_revision(engine) == HEAD_REVISION
    finally:
        released.join()
        holder.close()
        engine.dispose()
