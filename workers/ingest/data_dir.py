"""The data agent's ``DATA_DIR``: checked once at start, so an unusable one is one clear error naming it.

The agent writes two things there: the embedded candle store (``DATA_DIR/klines``, unless
``CLICKHOUSE_URL`` names a server) and its subscription set (``DATA_DIR/data-agent``). A directory it
cannot write (read-only file system, no permission, not a directory) would otherwise surface as a
storage error that promises to "buffer until it is back", then a traceback from the first save;
instead the agent stops with ``DataDirUnusable`` and the supervisor restarts it with backoff. A
*full* disk is not fatal: the agent runs, serves what it has, reports the disk ``down``, and
recovers by itself once space is freed.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

log = logging.getLogger("tacore.ingest")

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
#: the exit status of a data agent that cannot use DATA_DIR (BSD's EX_CANTCREAT: cannot create a file)
EXIT_DATA_DIR_UNUSABLE = 73


class DataDirUnusable(RuntimeError):
    """``DATA_DIR`` cannot be written (the message names the path and the reason)."""


def check_writable(data_dir: Path) -> None:
    """Create ``DATA_DIR/data-agent`` and write, sync and remove a probe file there."""
    where = data_dir / "data-agent"
    try:
        where.mkdir(parents=True, exist_ok=True)
        probe = where / ".write-probe"
        with probe.open("wb") as handle:
            handle.write(b"tacore")
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as exc:
        if exc.errno in _FULL:
            log.error("DATA_DIR %s is full (%s): the data agent starts, but stores nothing until space is freed",
                      data_dir.resolve(), exc.strerror)
            return
        name = errno.errorcode.get(exc.errno or 0, "error")
        raise DataDirUnusable(
            f"DATA_DIR {data_dir.resolve()} is not usable: {exc.strerror or exc} ({name}) at {exc.filename or where}; "
            "the data agent keeps its candles and its subscription set there: point DATA_DIR at a writable "
            "directory") from None
