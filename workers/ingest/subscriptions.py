"""The subscription set on disk, so it survives a restart of the data agent.

A small JSON file (``<DATA_DIR>/data-agent/subscriptions.json``), not a ClickHouse table: it must be
readable when storage is down, and it is written rarely (on add/remove), atomically (temp + rename).
Each stream is ``[symbol, interval, market]``, so a symbol keeps its market (and its feed) across a
restart; files written before markets existed (``[symbol, interval]``) still load.
A change is all or nothing (``persist_then_apply``): saved first, applied after, the file put back if
applying fails, so a stream never runs unsaved (it would vanish at the next restart).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path
from typing import TypeVar

import orjson

from tacore.errors import Unavailable
from tacore.intervals import INTERVAL_MS
from workers.ingest.normalise import SYMBOL_RE

log = logging.getLogger("tacore.ingest.subscriptions")

Pair = tuple[str, str]
Entry = tuple[str, str, str | None]  # symbol, interval, market
T = TypeVar("T")


class SubscriptionsNotSaved(Unavailable):
    """The set could not be written (disk full, read-only...): nothing changed; retryable once fixed."""

    def __init__(self, path: Path, exc: OSError) -> None:
        self.errno = exc.errno
        name = errno.errorcode.get(exc.errno or 0, "error")
        fix = "once the disk has room" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "once DATA_DIR is writable"
        super().__init__(f"cannot save the subscription set to {path}: {exc.strerror or exc} ({name}); nothing was "
                         f"changed, retry {fix}", details={"path": str(path), "errno": name})


class SubscriptionFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[Pair]:
        """Stored (symbol, interval) pairs; entries that no longer validate are skipped and logged."""
        return [(symbol, interval) for symbol, interval, _ in self.load_entries()]

    def markets(self) -> dict[str, str]:
        """The market each stored symbol was subscribed on."""
        return {symbol: market for symbol, _, market in self.load_entries() if market}

    def load_entries(self) -> list[Entry]:
        """Stored (symbol, interval, market) entries (market None in files from before markets)."""
        if not self.path.is_file():
            return []
        try:
            raw = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            log.error("subscription file %s unreadable (%s); starting from settings only", self.path, exc)
            return []
        entries: list[Entry] = []
        for item in raw.get("streams", []) if isinstance(raw, dict) else []:
            if (isinstance(item, list) and len(item) in (2, 3) and isinstance(item[0], str)
                    and SYMBOL_RE.match(item[0]) and item[1] in INTERVAL_MS
                    and (len(item) == 2 or isinstance(item[2], str))):
                entries.append((item[0], item[1], item[2] if len(item) == 3 else None))
            else:
                log.warning("subscription file: bad entry %r skipped", item)
        return entries

    def save(self, entries: Iterable[Entry | Pair]) -> None:
        """Write the set durably (temp file, fsync, rename); SubscriptionsNotSaved when the disk refuses."""
        tmp = self.path.with_suffix(".tmp")
        rows = [[entry[0], entry[1], *([entry[2]] if len(entry) == 3 and entry[2] else [])] for entry in entries]
        body = {"streams": sorted(rows)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as handle:
                handle.write(orjson.dumps(body, option=orjson.OPT_INDENT_2))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with suppress(OSError):
                tmp.unlink()
            raise SubscriptionsNotSaved(self.path, exc) from None


def persist_then_apply(file: SubscriptionFile, before: Iterable[Entry | Pair], after: Iterable[Entry | Pair],
                       apply: Callable[[], T]) -> T:
    """Change the subscriptions all or nothing: save ``after`` first (a full disk refuses the change before
    anything streams), then ``apply()`` it; if that fails, the file goes back to ``before``."""
    previous = list(before)
    file.save(after)
    try:
        return apply()
    except BaseException:
        with suppress(SubscriptionsNotSaved):
            file.save(previous)
        raise
