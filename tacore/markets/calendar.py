"""Trading calendars: when a market trades, as epoch-millisecond sessions.

``AlwaysOpen`` is crypto's 24/7 market (one session per UTC day, for day orders and daily figures).
``SessionCalendar`` wraps an ``exchange-calendars`` calendar (``XNYS``: NYSE sessions, holidays and
early closes), loaded once per process and turned into two sorted numpy arrays of session opens and
closes, so ``is_open`` is a binary search and the simulator can mask millions of minutes at once.
"""

from __future__ import annotations

import bisect
import threading
from functools import lru_cache
from typing import Protocol

import numpy as np
import numpy.typing as npt

DAY_MS = 86_400_000
YEAR_DAYS = 365.25

I64 = npt.NDArray[np.int64]


class TradingCalendar(Protocol):
    name: str
    #: sessions in an average year (365.25 for a 24/7 market, about 252 for NYSE)
    sessions_per_year: float
    #: average length of a session in ms (a full day for a 24/7 market)
    session_ms: float

    def is_open(self, ts_ms: int) -> bool: ...
    def session_at(self, ts_ms: int) -> tuple[int, int] | None: ...
    def next_session(self, ts_ms: int) -> tuple[int, int]: ...
    def previous_session(self, ts_ms: int) -> tuple[int, int]: ...
    def sessions(self, start_ms: int, end_ms: int) -> list[tuple[int, int]]: ...
    def open_mask(self, ts_ms: I64) -> npt.NDArray[np.bool_]: ...
    def trading_window(self, end_ms: int, duration_ms: int) -> list[tuple[int, int]]: ...


class AlwaysOpen:
    """24/7: always open; a session is a UTC day."""

    name = "24/7"
    sessions_per_year = YEAR_DAYS
    session_ms = float(DAY_MS)

    def is_open(self, ts_ms: int) -> bool:
        return True

    def session_at(self, ts_ms: int) -> tuple[int, int]:
        start = ts_ms - ts_ms % DAY_MS
        return start, start + DAY_MS

    def next_session(self, ts_ms: int) -> tuple[int, int]:
        """The session open at ``ts_ms`` (always one), as ``SessionCalendar`` does when open."""
        return self.session_at(ts_ms)

    def previous_session(self, ts_ms: int) -> tuple[int, int]:
        start = ts_ms - ts_ms % DAY_MS - DAY_MS
        return start, start + DAY_MS

    def sessions(self, start_ms: int, end_ms: int) -> list[tuple[int, int]]:
        first = start_ms - start_ms % DAY_MS
        return [(day, day + DAY_MS) for day in range(first, end_ms, DAY_MS)]

    def open_mask(self, ts_ms: I64) -> npt.NDArray[np.bool_]:
        return np.ones(ts_ms.shape, dtype=np.bool_)

    def trading_window(self, end_ms: int, duration_ms: int) -> list[tuple[int, int]]:
        """The last ``duration_ms`` before ``end_ms``: ``[(end_ms - duration_ms, end_ms)]``."""
        return [(end_ms - duration_ms, end_ms)]


class SessionCalendar:
    """An exchange's sessions (regular hours) as sorted open/close arrays in epoch ms."""

    def __init__(self, name: str, opens: I64, closes: I64) -> None:
        if opens.shape != closes.shape or not len(opens):
            raise ValueError(f"calendar {name}: no sessions")
        self.name = name
        self.opens = opens
        self.closes = closes
        self._opens_list: list[int] = opens.tolist()
        span_years = (int(closes[-1]) - int(opens[0])) / (YEAR_DAYS * DAY_MS)
        self.sessions_per_year = len(opens) / span_years if span_years > 0 else 252.0
        self.session_ms = float(np.mean(closes - opens))

    @property
    def first_ms(self) -> int:
        return int(self.opens[0])

    @property
    def last_ms(self) -> int:
        return int(self.closes[-1])

    def _index(self, ts_ms: int) -> int:
        """Index of the last session opening at or before ``ts_ms`` (-1 before the first)."""
        return bisect.bisect_right(self._opens_list, ts_ms) - 1

    def is_open(self, ts_ms: int) -> bool:
        i = self._index(ts_ms)
        return i >= 0 and ts_ms < int(self.closes[i])

    def session_at(self, ts_ms: int) -> tuple[int, int] | None:
        """The session running at ``ts_ms`` (open <= ts < close), or None outside sessions."""
        i = self._index(ts_ms)
        if i >= 0 and ts_ms < int(self.closes[i]):
            return int(self.opens[i]), int(self.closes[i])
        return None

    def next_session(self, ts_ms: int) -> tuple[int, int]:
        """The session running at ``ts_ms``, else the next one to open."""
        i = self._index(ts_ms)
        if i >= 0 and ts_ms < int(self.closes[i]):
            return int(self.opens[i]), int(self.closes[i])
        if i + 1 >= len(self.opens):
            raise ValueError(f"calendar {self.name} has no session after {ts_ms}")
        return int(self.opens[i + 1]), int(self.closes[i + 1])

    def previous_session(self, ts_ms: int) -> tuple[int, int]:
        """The last session that closed at or before ``ts_ms``."""
        i = self._index(ts_ms)
        if i >= 0 and ts_ms < int(self.closes[i]):
            i -= 1
        if i < 0:
            raise ValueError(f"calendar {self.name} has no session before {ts_ms}")
        return int(self.opens[i]), int(self.closes[i])

    def sessions(self, start_ms: int, end_ms: int) -> list[tuple[int, int]]:
        """Sessions overlapping [start_ms, end_ms)."""
        lo = max(0, self._index(start_ms))
        hi = bisect.bisect_left(self._opens_list, end_ms)
        return [(int(o), int(c)) for o, c in zip(self.opens[lo:hi], self.closes[lo:hi], strict=True)
                if c > start_ms]

    def trading_window(self, end_ms: int, duration_ms: int) -> list[tuple[int, int]]:
        """The last ``duration_ms`` of trading time before ``end_ms``, as half-open ``[start, stop)`` ranges
        of epoch ms inside sessions, oldest first: counted back across closes, weekends and holidays (on a
        Monday morning, the session so far and the end of Friday's). Less when the calendar's history
        runs out."""
        ranges: list[tuple[int, int]] = []
        left, stop, i = duration_ms, end_ms, self._index(end_ms)
        while left > 0 and i >= 0:
            session_open, session_close = int(self.opens[i]), int(self.closes[i])
            upper = min(session_close, stop)
            if upper > session_open:
                lower = max(session_open, upper - left)
                ranges.append((lower, upper))
                left -= upper - lower
            i -= 1
        return ranges[::-1]

    def open_mask(self, ts_ms: I64) -> npt.NDArray[np.bool_]:
        """Vectorised ``is_open`` for an array of timestamps."""
        idx = np.searchsorted(self.opens, ts_ms, side="right") - 1
        valid = idx >= 0
        closes = self.closes[np.clip(idx, 0, None)]
        return np.asarray(valid & (ts_ms < closes))


_LOCK = threading.Lock()


@lru_cache(maxsize=8)
def _exchange_calendar(code: str) -> SessionCalendar:
    import exchange_calendars as xcals
    import pandas as pd

    with _LOCK:
        cal = xcals.get_calendar(code, start=pd.Timestamp("2006-01-03"))
        schedule = cal.schedule
        opens = (schedule["open"].astype("int64") // 1_000_000).to_numpy(dtype=np.int64)
        closes = (schedule["close"].astype("int64") // 1_000_000).to_numpy(dtype=np.int64)
    return SessionCalendar(code, opens, closes)


def calendar_named(name: str) -> TradingCalendar:
    """``"24/7"`` or an exchange-calendars code such as ``"XNYS"`` (loaded once per process)."""
    if name in ("24/7", "24x7", "always"):
        return AlwaysOpen()
    return _exchange_calendar(name)
