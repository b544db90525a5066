"""The store against the source's clock: candles later than the exchange's own time are found, moved
aside at start, and reported (``kline.status``, and ``health.check`` through ``clock.json``).

How a store gets candles "from the future": it was written from a source whose clock ran ahead (the
demo's simulator used to run at 60x real time), then the source came back on a true clock. Such
candles are not merely stale, they are harmful, which is why they are moved out of the table at start
rather than only flagged or skipped for "latest":

- a closed candle from the future outranks the true one forever (``version`` is ``closed * 2^62 +
  event_time``, and its event time is later), so when the source reaches that time the store would
  keep the fiction;
- the resume point after a restart is the newest stored candle, so the live stream's backfill would
  start in the future and the gap detector would ignore every real candle "older" than it;
- ``kline.history`` and the analytics read the newest candles first.

They go to ``<table>_ahead`` (same schema), not to oblivion: if it was the source whose clock was
wrong (a simulator started in the past against real data), they can be copied back. Found while
running (the source's clock jumped back under a running agent), they are reported and kept out of
``get.market_data`` and the price cache by the read guard, and moved aside at the next start (the
agent's in-memory state still carries that clock until then). Feed-agnostic: a feed supplies its
source's time; the report is per check.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tacore.intervals import INTERVAL_MS
from tacore.store.coverage import AheadStream, candles_ahead, move_ahead_aside
from tacore.store.klines import KlineStore

log = logging.getLogger("tacore.ingest.clock")

CLOCK_FILE = "clock.json"
#: streams listed in a report (the counts cover all)
_LISTED = 50


@dataclass(slots=True)
class ClockReport:
    """One check of the store against the source's clock, and what was done about it."""

    state: str = "unknown"  # the store now: ok | ahead (candles later than the source) | unknown
    checked_at: float | None = None  # epoch s
    source_time_ms: int | None = None
    offset_ms: int | None = None  # source clock minus this machine's
    ahead: list[AheadStream] = field(default_factory=list)
    moved_aside: dict[str, Any] | None = None  # the last move: when, how many, which streams, how far, where
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state, "checked_at": self.checked_at, "source_time_ms": self.source_time_ms,
            "offset_ms": self.offset_ms, "ahead_streams": len(self.ahead),
            "ahead_candles": sum(a.candles for a in self.ahead),
            "max_ahead_ms": max((a.ahead_ms for a in self.ahead), default=None),
            "ahead": [a.as_dict() for a in self.ahead[:_LISTED]], "moved_aside": self.moved_aside,
            "error": self.error,
        }


class StoreClock:
    """Checks a store against a source's time; keeps the last report and mirrors it to ``clock.json``."""

    def __init__(self, store: KlineStore, directory: Path) -> None:
        self.store = store
        self.path = directory / CLOCK_FILE
        self.report = ClockReport()

    def stream_ends(self) -> dict[tuple[str, str], tuple[int, int | None]]:
        """Read **before** the source's time is: every candle in it was then written before that time, so
        a running feed's newest candles cannot pass for ahead. Blocking (storage)."""
        return self.store.newest_open_times()

    def check(self, source_ms: int, ends: Mapping[tuple[str, str], tuple[int, int | None]], *,
              move: bool) -> ClockReport:
        """Find candles ahead of ``source_ms`` in the streams whose ``ends`` (from ``stream_ends``) say so;
        with ``move`` put them aside. Blocking (storage)."""
        report = ClockReport(checked_at=time.time(), source_time_ms=source_ms,
                             offset_ms=source_ms - int(time.time() * 1000), moved_aside=self.report.moved_aside)
        suspects = {pair for pair, (newest, closed) in ends.items()
                    if newest > source_ms or (closed is not None and closed + INTERVAL_MS[pair[1]] > source_ms)}
        try:
            found = candles_ahead(self.store, source_ms, {s for s, _ in suspects}) if suspects else []
            report.ahead = [a for a in found if (a.symbol, a.interval) in suspects]
            report.state = "ahead" if report.ahead else "ok"
            if report.ahead and move:
                found = report.ahead
                table = move_ahead_aside(self.store, source_ms, sorted({a.symbol for a in found}))
                report.moved_aside = {
                    "at": report.checked_at, "source_time_ms": source_ms, "table": table,
                    "candles": sum(a.candles for a in found), "stream_count": len(found),
                    "max_ahead_ms": max(a.ahead_ms for a in found),
                    "symbols": sorted({a.symbol for a in found}),
                    "streams": [a.as_dict() for a in found[:_LISTED]],
                }
                report.ahead, report.state = [], "ok"
                log.warning("store held %d candles of %d streams ahead of the source's clock (up to %.1f h): "
                            "moved to %s", report.moved_aside["candles"], len(found),
                            report.moved_aside["max_ahead_ms"] / 3_600_000, table)
            elif report.ahead:
                log.warning("store holds %d candles of %d streams ahead of the source's clock (up to %.1f h); "
                            "not served as live, moved aside at the next start", sum(a.candles for a in report.ahead),
                            len(report.ahead), max(a.ahead_ms for a in report.ahead) / 3_600_000)
        except Exception as exc:
            report.state, report.error = "unknown", f"{type(exc).__name__}: {exc}"[:300]
        self.report = report
        self._save()
        return report

    def unknown(self, reason: str) -> ClockReport:
        """The source's time could not be read."""
        self.report = ClockReport(state="unknown", checked_at=time.time(), moved_aside=self.report.moved_aside,
                                  error=reason[:300])
        self._save()
        return self.report

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(orjson.dumps(self.report.as_dict()))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.path, exc)


def read_clock_file(directory: Path) -> dict[str, Any] | None:
    """The data agent's last report (for ``health.check``); None when there is none."""
    try:
        raw = orjson.loads((directory / CLOCK_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return raw if isinstance(raw, dict) else None
