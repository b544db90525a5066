"""The US-equities market as the simulator serves it: bars of any timeframe over any span, at any time.

Only minutes that have closed by ``now`` count (Alpaca's bars never show the running minute), so a
bucket that is still running comes back partial and grows as minutes close, exactly as the stream's
minute bars add up. Closed sessions' daily bars and recent sessions' minutes are cached; everything
else is generated on demand in vectorised chunks of sessions. Public methods take a lock: REST pages
are built in worker threads while the stream feed reads on the event loop.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

import numpy as np

from tacore.exchange_sim.alpaca.bars import (
    I64,
    BarColumns,
    aggregate,
    concat_columns,
    empty_columns,
    minute_bars,
)
from tacore.exchange_sim.alpaca.sessions import DAY_MS, MINUTE_MS, MinuteSpan, TradingMinutes
from tacore.exchange_sim.alpaca.timeframes import Timeframe, Unit
from tacore.exchange_sim.alpaca.universe import TEST_SYMBOL, UsProfile, is_ticker, make_us_profile

_SESSIONS_PER_CHUNK = 100  # sessions generated in one numpy pass (39,000 minutes)
_SESSION_CACHE = 512
_DAY_CACHE = 200_000


class UsMarket:
    """Bars of the listed tickers, a pure function of (seed, ticker, minute) given the calendar."""

    def __init__(self, seed: int, listed: frozenset[str], minutes: TradingMinutes) -> None:
        self.seed = seed
        self.listed = listed
        self.minutes = minutes
        self._profiles: dict[str, UsProfile] = {}
        self._sessions: OrderedDict[tuple[str, str, int], BarColumns] = OrderedDict()
        self._days: OrderedDict[tuple[str, str, int], BarColumns] = OrderedDict()
        #: late trades (a test's fault): (symbol, minute) -> [(price in cents, shares)], on both feeds
        self._late: dict[tuple[str, int], list[tuple[int, int]]] = {}
        self._lock = threading.RLock()

    def is_listed(self, symbol: str) -> bool:
        return symbol in self.listed

    @staticmethod
    def is_well_formed(symbol: str) -> bool:
        return is_ticker(symbol) or symbol == TEST_SYMBOL

    def profile(self, symbol: str) -> UsProfile:
        prof = self._profiles.get(symbol)
        if prof is None:
            prof = self._profiles[symbol] = make_us_profile(symbol, self.seed)
        return prof

    # -- minutes -------------------------------------------------------------------------------------
    def session_minutes(self, symbol: str, feed: str, session: int) -> BarColumns:
        """Every minute bar of one session (cached; callers cut at ``now``)."""
        with self._lock:
            return self._session_minutes(symbol, feed, session)

    def _session_minutes(self, symbol: str, feed: str, session: int) -> BarColumns:
        key = (symbol, feed, session)
        cols = self._sessions.get(key)
        if cols is None:
            cols = self._with_late(symbol, minute_bars(self.profile(symbol), self.minutes.span(session, session + 1),
                                                       feed))
            self._sessions[key] = cols
            if len(self._sessions) > _SESSION_CACHE:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(key)
        return cols

    def _span_minutes(self, symbol: str, feed: str, first: int, last: int) -> BarColumns:
        if last - first == 1:
            return self._session_minutes(symbol, feed, first)
        return self._with_late(symbol, minute_bars(self.profile(symbol), self.minutes.span(first, last), feed))

    # -- late trades -----------------------------------------------------------------------------------
    def add_late_trade(self, symbol: str, minute: int, price_cents: int | None, shares: int) -> bool:
        """A trade reported after its minute's bar went out (what makes Alpaca send ``updatedBars``):
        the minute's bar and every aggregate holding it change from now on. False outside sessions."""
        with self._lock:
            session = self.minutes.session_of_minute(minute)
            if session < 0:
                return False
            if price_cents is None:
                price_cents = int(self._session_minutes(symbol, "sip", session).close[
                    minute - int(self.minutes.open_min[session])])
            self._late.setdefault((symbol, minute), []).append((price_cents, shares))
            for feed in ("sip", "iex"):
                self._sessions.pop((symbol, feed, session), None)
                self._days.pop((symbol, feed, session), None)
            return True

    def _with_late(self, symbol: str, cols: BarColumns) -> BarColumns:
        late = [(minute, trades) for (sym, minute), trades in self._late.items() if sym == symbol]
        if not late or not len(cols):
            return cols
        minutes = cols.start // 60_000
        changed = False
        out = BarColumns(*(np.array(getattr(cols, f), copy=True) for f in BarColumns.__slots__))
        for minute, trades in late:
            at = np.flatnonzero(minutes == minute)
            if not len(at):
                continue
            i = int(at[0])
            for price, shares in trades:
                out.high[i] = max(int(out.high[i]), price)
                out.low[i] = min(int(out.low[i]), price)
                out.volume[i] += shares
                out.trades[i] += 1
                out.value[i] += price * 10_000 * shares
            changed = True
        return out if changed else cols

    def minute_bar(self, symbol: str, feed: str, minute: int) -> BarColumns:
        """The bar of one session minute (empty outside sessions)."""
        with self._lock:
            session = self.minutes.session_of_minute(minute)
            if session < 0:
                return empty_columns()
            pos = minute - int(self.minutes.open_min[session])
            return self._session_minutes(symbol, feed, session).take(slice(pos, pos + 1))

    def day_so_far(self, symbol: str, feed: str, minute: int) -> BarColumns:
        """The daily bar of ``minute``'s session through that minute (stamped New York midnight)."""
        with self._lock:
            return self._day_so_far(symbol, feed, minute)

    def _day_so_far(self, symbol: str, feed: str, minute: int) -> BarColumns:
        session = self.minutes.session_of_minute(minute)
        if session < 0:
            return empty_columns()
        pos = minute - int(self.minutes.open_min[session])
        cols = self._session_minutes(symbol, feed, session).take(slice(0, pos + 1))
        return aggregate(cols, np.full(len(cols), self.minutes.ny_midnight_ms[session], dtype=np.int64))

    def latest_minute(self, symbol: str, feed: str, now_ms: int) -> BarColumns:
        """The newest closed session minute bar at ``now_ms``."""
        last_closed = now_ms // MINUTE_MS - 1
        session = self.minutes.last_session_opened_by(last_closed * MINUTE_MS)
        if session < 0:
            return empty_columns()
        return self.minute_bar(symbol, feed, min(last_closed, int(self.minutes.close_min[session]) - 1))

    def test_minute(self, minute: int) -> BarColumns:
        """``FAKEPACA`` on the always-open test stream: a bar every minute, day and night."""
        with self._lock:
            one = np.array([minute], dtype=np.int64)
            span = MinuteSpan(one, one, one // 1440, one % 1440, np.array([1440], dtype=np.int64))
            return minute_bars(self.profile(TEST_SYMBOL), span, "iex")

    # -- any timeframe -------------------------------------------------------------------------------
    def bars(self, symbol: str, timeframe: Timeframe, feed: str, start_ms: int, end_ms: int, now_ms: int, *,
             descending: bool = False, limit: int = 1000) -> BarColumns:
        """Up to ``limit`` bars stamped in [start_ms, end_ms], oldest first (newest first when
        ``descending``), built from the minutes closed by ``now_ms``."""
        if limit <= 0 or end_ms < start_ms:
            return empty_columns()
        with self._lock:
            if timeframe.intraday:
                return self._intraday(symbol, timeframe, feed, start_ms, end_ms, now_ms, descending, limit)
            if timeframe.unit is Unit.DAY:
                return self._day_range(symbol, feed, start_ms, end_ms, now_ms, descending, limit)
            return self._grouped(symbol, timeframe, feed, start_ms, end_ms, now_ms, descending, limit)

    def _intraday(self, symbol: str, tf: Timeframe, feed: str, start: int, end: int, now: int, descending: bool,
                  limit: int) -> BarColumns:
        step = tf.step_ms
        hi = min(end + step - 1, now - MINUTE_MS)  # the last minute that can count
        tm = self.minutes
        first, last = tm.first_session_ending_after(start), tm.last_session_opened_by(hi)
        if hi < start or first > last:
            return empty_columns()
        per_session = max(1, 390 * MINUTE_MS // step)
        chunk = max(1, min(_SESSIONS_PER_CHUNK, math.ceil(limit / per_session) + 1))
        parts: list[BarColumns] = []
        got = 0
        ranges = [(a, min(a + chunk, last + 1)) for a in range(first, last + 1, chunk)]
        for a, b in (reversed(ranges) if descending else ranges):
            cols = self._span_minutes(symbol, feed, a, b)
            cols = cols.take((cols.start >= start) & (cols.start <= hi))
            days = cols.start - cols.start % DAY_MS
            agg = aggregate(cols, days + (cols.start - days) // step * step)
            agg = agg.take((agg.start >= start) & (agg.start <= end))
            if descending:
                agg = agg.take(slice(None, None, -1))
            parts.append(agg)
            got += len(agg)
            if got >= limit:
                break
        return concat_columns(parts).take(slice(0, limit))

    # -- days ----------------------------------------------------------------------------------------
    def _day_range(self, symbol: str, feed: str, start: int, end: int, now: int, descending: bool,
                   limit: int) -> BarColumns:
        tm = self.minutes
        first = int(np.searchsorted(tm.ny_midnight_ms, start, side="left"))
        stop = int(np.searchsorted(tm.ny_midnight_ms, end, side="right"))
        stop = min(stop, tm.last_session_opened_by(now - MINUTE_MS) + 1)
        if first >= stop:
            return empty_columns()
        chosen = np.arange(stop - 1, first - 1, -1) if descending else np.arange(first, stop)
        return self._day_bars(symbol, feed, chosen[:limit], now)

    def day_bars(self, symbol: str, feed: str, sessions: I64, now: int) -> BarColumns:
        """One daily bar per session (in the order given), from the minutes closed by ``now``."""
        with self._lock:
            return self._day_bars(symbol, feed, sessions, now)

    def _day_bars(self, symbol: str, feed: str, sessions: I64, now: int) -> BarColumns:
        tm = self.minutes
        closed = tm.close_min[sessions] * MINUTE_MS <= now
        missing = sorted(int(s) for s, done in zip(sessions, closed, strict=True)
                         if done and (symbol, feed, int(s)) not in self._days)
        for a, b in _runs(missing):
            for lo in range(a, b, _SESSIONS_PER_CHUNK):
                hi = min(b, lo + _SESSIONS_PER_CHUNK)
                cols = self._span_minutes(symbol, feed, lo, hi)
                sess = np.repeat(np.arange(lo, hi, dtype=np.int64), tm.length[lo:hi])
                agg = aggregate(cols, tm.ny_midnight_ms[sess])
                for j in range(len(agg)):
                    self._remember_day((symbol, feed, lo + j), agg.take(slice(j, j + 1)))
        parts = []
        for s, done in zip(sessions, closed, strict=True):
            key = (symbol, feed, int(s))
            if done:
                bar = self._days[key]
                self._days.move_to_end(key)
            else:  # the running session: its closed minutes so far
                bar = self._day_so_far(symbol, feed, min(now // MINUTE_MS - 1, int(tm.close_min[s]) - 1))
            parts.append(bar)
        return concat_columns(parts)

    def _remember_day(self, key: tuple[str, str, int], bar: BarColumns) -> None:
        self._days[key] = bar
        if len(self._days) > _DAY_CACHE:
            self._days.popitem(last=False)

    def _grouped(self, symbol: str, tf: Timeframe, feed: str, start: int, end: int, now: int, descending: bool,
                 limit: int) -> BarColumns:
        """Week and month bars: groups of daily bars, stamped with their first session's New York midnight."""
        tm = self.minutes
        if tf.unit is Unit.WEEK:
            keys = tm.week_key
        else:
            months = (tm.month_key // 100) * 12 + tm.month_key % 100 - 1
            keys = months // tf.amount
        usable = tm.last_session_opened_by(now - MINUTE_MS) + 1
        if usable <= 0:
            return empty_columns()
        starts = np.concatenate(([0], np.flatnonzero(np.diff(keys[:usable])) + 1)).astype(np.int64)
        stamps = tm.ny_midnight_ms[starts]
        picked = np.flatnonzero((stamps >= start) & (stamps <= end))
        if descending:
            picked = picked[::-1]
        picked = picked[:limit]
        if not len(picked):
            return empty_columns()
        bounds = np.concatenate((starts, [usable]))
        rows: list[tuple[int, ...]] = []
        for g in picked:
            days = self._day_bars(symbol, feed, np.arange(bounds[g], bounds[g + 1], dtype=np.int64), now)
            rows.append((int(stamps[g]), int(days.open[0]), int(days.high.max()), int(days.low.min()),
                         int(days.close[-1]), int(days.volume.sum()), int(days.trades.sum()),
                         sum(int(v) for v in days.value)))
        columns = list(zip(*rows, strict=True))
        t, o, h, lo, c, v, n = (np.array(col, dtype=np.int64) for col in columns[:7])
        value = np.array(columns[7], dtype=object)  # a year of NVDA's dollar volume passes 2**63 micro-dollars
        return BarColumns(t, o, h, lo, c, v, n, value)


def _runs(values: list[int]) -> list[tuple[int, int]]:
    """Sorted integers as [start, stop) runs of consecutive values."""
    runs: list[tuple[int, int]] = []
    for v in values:
        if runs and runs[-1][1] == v:
            runs[-1] = (runs[-1][0], v + 1)
        else:
            runs.append((v, v + 1))
    return runs
