"""NYSE regular sessions as minute arrays, and the trading-minute index the price walk runs on.

Bars exist only inside regular sessions (09:30-16:00 New York, 13:00 on early closes, none on
holidays), all taken from the ``exchange-calendars`` schedule that ``tacore.markets`` loads. The
price path is a function of the *trading-minute index* (the k-th session minute since the calendar's
first session), not of wall time, so nights and weekends do not stretch the random walk: a day moves
like 390 minutes of trading, and a small per-session offset gives the overnight gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from tacore.markets.calendar import SessionCalendar

I64 = npt.NDArray[np.int64]
MINUTE_MS = 60_000
DAY_MS = 86_400_000
NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True, slots=True)
class MinuteSpan:
    """Session minutes of consecutive sessions, as parallel arrays."""

    minute: I64  # epoch minute (open time // 60000)
    index: I64  # trading-minute index: continuous across sessions
    session: I64  # session number
    position: I64  # minute within its session, 0-based
    length: I64  # minutes in its session (390, or 210 on an early close)


class TradingMinutes:
    """Session opens/closes in epoch minutes with the cumulative minute count before each session."""

    def __init__(self, calendar: SessionCalendar) -> None:
        self.name = calendar.name
        self.open_min: I64 = (calendar.opens // MINUTE_MS).astype(np.int64)
        self.close_min: I64 = (calendar.closes // MINUTE_MS).astype(np.int64)
        self.length: I64 = self.close_min - self.open_min
        self.cum: I64 = np.concatenate(([0], np.cumsum(self.length))).astype(np.int64)
        dates = [datetime.fromtimestamp(int(o) * 60, NEW_YORK).date() for o in self.open_min]
        #: New York midnight of each session's date: the timestamp of Alpaca's daily bar
        self.ny_midnight_ms: I64 = np.array(
            [int(datetime(d.year, d.month, d.day, tzinfo=NEW_YORK).timestamp()) * 1000 for d in dates], dtype=np.int64)
        #: UTC midnight of each session's date: the open time of TACore's 1d candle (the session lies inside it)
        self.utc_day_ms: I64 = (self.open_min * MINUTE_MS // DAY_MS * DAY_MS).astype(np.int64)
        iso = [d.isocalendar() for d in dates]
        self.week_key: I64 = np.array([w.year * 100 + w.week for w in iso], dtype=np.int64)
        self.month_key: I64 = np.array([d.year * 100 + d.month for d in dates], dtype=np.int64)

    @property
    def count(self) -> int:
        return len(self.open_min)

    def first_ms(self) -> int:
        return int(self.open_min[0]) * MINUTE_MS

    def last_ms(self) -> int:
        return int(self.close_min[-1]) * MINUTE_MS

    # -- lookups ---------------------------------------------------------------------------------------
    def session_of_minute(self, minute: int) -> int:
        """The session holding epoch ``minute``, or -1 outside sessions."""
        i = int(np.searchsorted(self.open_min, minute, side="right")) - 1
        if i >= 0 and minute < int(self.close_min[i]):
            return i
        return -1

    def first_session_ending_after(self, ts_ms: int) -> int:
        """The first session whose close is after ``ts_ms`` (the one running, or the next); may be ``count``."""
        return int(np.searchsorted(self.close_min * MINUTE_MS, ts_ms, side="right"))

    def last_session_opened_by(self, ts_ms: int) -> int:
        """The last session that opened at or before ``ts_ms``; -1 before the first."""
        return int(np.searchsorted(self.open_min * MINUTE_MS, ts_ms, side="right")) - 1

    def minute_mask(self, minutes: I64) -> npt.NDArray[np.bool_]:
        """Vectorised: which epoch minutes are session minutes."""
        idx = np.searchsorted(self.open_min, minutes, side="right") - 1
        closes = self.close_min[np.clip(idx, 0, None)]
        return np.asarray((idx >= 0) & (minutes < closes))

    def trading_index(self, minute: int) -> int:
        """Trading-minute index of a session minute (raises for minutes outside sessions)."""
        i = self.session_of_minute(minute)
        if i < 0:
            raise ValueError(f"minute {minute} is outside {self.name} sessions")
        return int(self.cum[i]) + minute - int(self.open_min[i])

    # -- spans -------------------------------------------------------------------------------------------
    def span(self, first: int, last: int) -> MinuteSpan:
        """Every minute of sessions ``first`` .. ``last - 1`` (vectorised)."""
        first, last = max(0, first), min(self.count, last)
        if first >= last:
            empty = np.zeros(0, dtype=np.int64)
            return MinuteSpan(empty, empty, empty, empty, empty)
        lo, hi = int(self.cum[first]), int(self.cum[last])
        index = np.arange(lo, hi, dtype=np.int64)
        session = np.repeat(np.arange(first, last, dtype=np.int64), self.length[first:last])
        position = index - self.cum[session]
        minute = self.open_min[session] + position
        return MinuteSpan(minute, index, session, position, self.length[session])
