"""Checkpoint a SQLite database's write-ahead log from a thread of its own, off every commit's path.

SQLite in WAL mode appends each commit to the ``-wal`` file; a *checkpoint* copies those pages back
into the database file and syncs both (with ``synchronous=NORMAL`` that is the only fsync there is).
By default the connection whose commit takes the log past 1,000 pages runs the checkpoint inside that
commit: for the order ledger (about 20 pages an order) that was one order in fifty waiting out two
fsyncs and a few MB of writes -- the whole of its p99. A process that owns a hot SQLite file turns
those automatic checkpoints off on its own connections (``PRAGMA wal_autocheckpoint=0``) and starts a
``WalCheckpointer``: every ``every_s`` it runs a ``PASSIVE`` checkpoint (it never waits for nor blocks
a writer; the sqlite3 module lets go of the GIL while it runs).

Durability does not depend on checkpoints: a commit is durable once its pages are in the log (written
before the commit returns, so it survives kill -9 of any process; ``synchronous=FULL`` also syncs the
log at each commit, so it survives an OS crash). A checkpoint only moves pages and bounds the log.

A checkpoint that copied the whole log lets the next writer start the log over, and starting it over
costs that writer an fsync of the log's new header: with checkpoints every 50 ms that was one order in
eight paying an fsync (strace of the order process). So the checkpointer holds a read snapshot open on
a second connection (``pin``), taken while the log still had pages to copy: a reader on the log keeps
writers from starting it over, and a passive checkpoint copies up to that snapshot, never past it. Each
turn it copies up to the snapshot, then takes a newer one if commits came since. Once the log holds
``restart_frames`` pages it lets go and runs a ``RESTART`` checkpoint (holding writers back for the
pages the last turn left), so the log starts over -- one header fsync per ``restart_frames`` pages
(~800 orders at the default), instead of one per turn.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger("tacore.store")

EVERY_S = 0.05
RESTART_FRAMES = 16_384  # 64 MiB of 4 KiB pages
_LOG_EVERY_S = 60.0  # while checkpoints keep failing, one warning a minute


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for another database or an in-memory one)."""
    if not url.startswith("sqlite:///") or ":memory:" in url:
        return None
    return Path(url.removeprefix("sqlite:///").split("?", 1)[0])


class WalCheckpointer:
    def __init__(self, path: Path, *, every_s: float = EVERY_S, restart_frames: int = RESTART_FRAMES,
                 name: str = "wal-checkpoint") -> None:
        self.path = path
        self.every_s = every_s
        self.restart_frames = restart_frames
        self.checkpoints = 0
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> WalCheckpointer:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def checkpoint_once(self, conn: sqlite3.Connection, pin: sqlite3.Connection) -> tuple[int, int]:
        """One turn: a passive checkpoint up to ``pin``'s snapshot, then a newer snapshot if commits came
        since (or a restart when the log is long). Returns (pages in the log, pages copied)."""
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1
        if frames >= self.restart_frames:
            _unpin(pin)
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            if not busy:
                self.restarts += 1
        elif frames > copied or not pin.in_transaction:
            _unpin(pin)
            pin.execute("BEGIN")
            pin.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # the read takes the snapshot
        return int(frames), int(copied)

    def _connect(self) -> sqlite3.Connection:
        # the busy timeout bounds how long a RESTART holds writers back waiting for its turn
        return sqlite3.connect(self.path, timeout=0.5, isolation_level=None, check_same_thread=False)

    def _run(self) -> None:
        conns: tuple[sqlite3.Connection, sqlite3.Connection] | None = None
        failing, logged_at = 0, 0.0
        try:
            while not self._stop.wait(self.every_s):
                try:
                    if conns is None:
                        conns = (self._connect(), self._connect())
                    self.checkpoint_once(*conns)
                except sqlite3.Error as exc:  # the next turn tries again (and a commit's own durability is unaffected)
                    failing += 1
                    if failing == 1 or time.monotonic() - logged_at >= _LOG_EVERY_S:  # a full disk: not 20 lines/s
                        log.warning("WAL checkpoint of %s failed (%d turn(s) in a row; the log grows until one "
                                    "succeeds): %s", self.path, failing, exc)
                        logged_at = time.monotonic()
                    if conns is not None:
                        _close(*conns)
                    conns = None
                else:
                    if failing:
                        log.info("WAL checkpoint of %s works again after %d failed turn(s)", self.path, failing)
                    failing = 0
        finally:
            if conns is not None:
                with contextlib.suppress(sqlite3.Error):
                    _unpin(conns[1])
                    conns[0].execute("PRAGMA wal_checkpoint(PASSIVE)")
                _close(*conns)


def _unpin(pin: sqlite3.Connection) -> None:
    if pin.in_transaction:
        pin.execute("COMMIT")


def _close(*conns: sqlite3.Connection) -> None:
    for conn in conns:
        with contextlib.suppress(sqlite3.Error):
            conn.close()
