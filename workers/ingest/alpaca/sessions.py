"""When US candles open and close: TACore's epoch-aligned intervals over NYSE sessions.

A US candle keeps TACore's open times (``1m`` .. ``4h`` aligned on the epoch like Binance's, ``1d`` on
UTC midnight: a regular session lies inside its UTC day) but only exists where the session trades,
and it is *closed* when its interval or its session ends, whichever comes first: the ``1h`` candle of
``13:00Z`` on a day opening at ``13:30Z`` holds 30 minutes, the ``1d`` candle closes at ``20:00Z``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from tacore.intervals import INTERVAL_MS
from tacore.markets.calendar import DAY_MS, TradingCalendar

MINUTE_MS = 60_000


class UsCandleClock:
    """Takes the calendar or a function that loads it: loading NYSE's schedule costs a second or two
    (pandas, exchange-calendars), which an agent that never sees a US symbol should not pay."""

    def __init__(self, calendar: TradingCalendar | Callable[[], TradingCalendar]) -> None:
        self._calendar: TradingCalendar | None = None if callable(calendar) else calendar
        self._load: Callable[[], TradingCalendar] | None = calendar if callable(calendar) else None
        self._lock = threading.Lock()

    @property
    def calendar(self) -> TradingCalendar:
        if self._calendar is None:
            with self._lock:
                if self._calendar is None and self._load is not None:
                    self._calendar = self._load()
        assert self._calendar is not None
        return self._calendar

    @property
    def loaded(self) -> bool:
        return self._calendar is not None

    @staticmethod
    def open_time(ts_ms: int, interval: str) -> int:
        """Open time of the candle of ``interval`` holding ``ts_ms``."""
        return ts_ms - ts_ms % INTERVAL_MS[interval]

    def close_ms(self, open_time: int, interval: str) -> int:
        """When the candle opening at ``open_time`` is complete: its interval's end or its session's close."""
        end = open_time + INTERVAL_MS[interval]
        _, session_close = self.calendar.next_session(open_time)
        return min(end, session_close) if session_close > open_time else end

    def is_closed(self, open_time: int, interval: str, now_ms: int) -> bool:
        return self.close_ms(open_time, interval) <= now_ms

    def previous_minute(self, minute_ms: int) -> int | None:
        """The session minute before ``minute_ms`` (None before the calendar's first session)."""
        before = minute_ms - MINUTE_MS
        if self.calendar.is_open(before):
            return before
        try:
            _, close = self.calendar.previous_session(minute_ms)
        except ValueError:
            return None
        return close - MINUTE_MS

    def session_start(self, now_ms: int) -> int | None:
        """Open of the session running at ``now_ms``, else of the last one that ran."""
        running = self.calendar.session_at(now_ms)
        if running is not None:
            return running[0]
        try:
            return self.calendar.previous_session(now_ms)[0]
        except ValueError:
            return None

    def window_start(self, interval: str, count: int, now_ms: int) -> int:
        """Open time of the oldest of the ``count`` candles of ``interval`` before the one running at
        ``now_ms`` (the candles a history of depth ``count`` holds)."""
        step = INTERVAL_MS[interval]
        anchor = self.open_time(now_ms, interval)
        need, end, oldest = count, anchor, anchor
        chunk = max(7 * DAY_MS, count * step * 2)
        while need > 0:
            sessions = [s for s in self.calendar.sessions(end - chunk, end) if s[0] < end]
            if not sessions:
                return oldest
            for open_ms, close_ms in reversed(sessions):
                if step >= DAY_MS:
                    first = last = open_ms - open_ms % DAY_MS
                else:
                    last_minute = min(close_ms, anchor) - MINUTE_MS
                    first, last = open_ms - open_ms % step, last_minute - last_minute % step
                if last < first or last >= anchor:
                    continue
                n = (last - first) // step + 1
                if n >= need:
                    return last - (need - 1) * step
                need -= n
                oldest = first
            end = sessions[0][0]
        return oldest
