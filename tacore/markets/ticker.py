"""Rolling 24-hour ticker figures of a symbol (change, high, low, volume), kept current from its candles.

An exchange's 24 h ticker compares the last price with the price 24 hours earlier and sums the day's
volume. Here both come from one interval's candles (``TICKER_INTERVAL``, 5 minutes: 289 candles a day,
and 1,000 of them, the default history depth, hold 3.5 days). The window ends at the symbol's **last
event time** ``as_of``, not at the wall clock, so a stock on a Saturday compares Friday's close with
Thursday's (the previous session), never with nothing:

- the reference price is the close of the last candle that closed at or before ``as_of - 24 h``;
- the window is every candle that closed after ``as_of - 24 h`` up to ``as_of`` (the running one too):
  its high, low, volume and quote volume are the ticker's.

Without a reference candle there are not 24 hours of history yet and every figure is ``None``: a
partial day is not presented as a day. ``RollingTicker`` keeps only the candles that matter and the
closed candles' aggregates between changes, so a price update costs O(1) and the aggregates are
recomputed once per closed candle (every 5 minutes). The same class computes the figures from stored
candles on a cache miss, so a hit and a miss always agree.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from tacore.intervals import INTERVAL_MS
from tacore.store.klines import KlineRow

DAY_MS = 86_400_000
TICKER_INTERVAL = "5m"


class _Bar(NamedTuple):
    open_time: int
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float


@dataclass(frozen=True, slots=True)
class Ticker24h:
    """The 24 h figures at ``as_of`` (epoch ms). ``None`` figures: less than 24 h of history."""

    as_of: int
    ref_price: float | None  # close of the last candle closed at or before as_of - 24 h
    ref_time: int | None  # when that candle closed
    high: float | None
    low: float | None
    volume: float | None
    quote_volume: float | None
    candles: int  # candles in the window

    def change(self, price: float) -> tuple[float | None, float | None]:
        """Absolute and percent change of ``price`` against the reference price."""
        if self.ref_price is None or not self.ref_price:
            return None, None
        delta = price - self.ref_price
        return delta, delta / self.ref_price * 100.0

    def to_json(self) -> dict[str, Any]:
        return {"as_of": self.as_of, "ref_price": self.ref_price, "ref_time": self.ref_time, "high": self.high,
                "low": self.low, "volume": self.volume, "quote_volume": self.quote_volume, "candles": self.candles}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Ticker24h:
        return cls(int(raw["as_of"]), raw["ref_price"], raw["ref_time"], raw["high"], raw["low"], raw["volume"],
                   raw["quote_volume"], int(raw["candles"]))


class RollingTicker:
    """One symbol's candles of the ticker interval since just before ``as_of - 24 h``.

    ``add`` takes any version of a candle (open updates and closed candles, live or fetched, in any
    order); ``figures`` answers for the newest event seen.
    """

    def __init__(self, interval: str = TICKER_INTERVAL) -> None:
        self.step = INTERVAL_MS[interval]
        self.as_of = 0
        self._opens: list[int] = []  # open times of the closed candles kept, ascending
        self._bars: list[_Bar] = []
        self._running: _Bar | None = None
        self._version = 0  # bumps when the closed set changes
        self._agg_key: tuple[int, int] = (-1, -1)
        self._agg: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def add(self, row: KlineRow) -> None:
        # a closed candle is an event at its end (a fetched one carries its close time, 1 ms earlier)
        event = max(row.event_time, row.open_time + self.step) if row.closed else row.event_time
        if event > self.as_of:
            self.as_of = event
        bar = _Bar(row.open_time, row.high, row.low, row.close, row.volume, row.quote_volume)
        if row.closed:
            i = bisect.bisect_left(self._opens, row.open_time)
            if i < len(self._opens) and self._opens[i] == row.open_time:
                self._bars[i] = bar
            else:
                self._opens.insert(i, row.open_time)
                self._bars.insert(i, bar)
            self._version += 1
            if self._running is not None and self._running.open_time <= row.open_time:
                self._running = None
        elif (not self._opens or row.open_time > self._opens[-1]) and (
                self._running is None or row.open_time >= self._running.open_time):
            self._running = bar

    def figures(self) -> Ticker24h | None:
        """The figures at the newest event seen; None before any candle."""
        if not self._bars and self._running is None:
            return None
        cut = self.as_of - DAY_MS
        start = bisect.bisect_right(self._opens, cut - self.step)  # first candle closing after the cut
        if start == 0:
            return Ticker24h(self.as_of, None, None, None, None, None, None, 0)
        if start > 1:  # older than the reference candle: never needed again (as_of only grows)
            del self._opens[:start - 1], self._bars[:start - 1]
            start = 1
            self._version += 1
        ref = self._bars[start - 1]
        key = (start, self._version)
        if key != self._agg_key:
            window = self._bars[start:]
            self._agg = (max((b.high for b in window), default=float("-inf")),
                         min((b.low for b in window), default=float("inf")),
                         sum(b.volume for b in window), sum(b.quote_volume for b in window))
            self._agg_key = (start, self._version)
        high, low, volume, quote = self._agg
        count = len(self._bars) - start
        running = self._running
        if running is not None and running.open_time > ref.open_time:
            high, low = max(high, running.high), min(low, running.low)
            volume, quote, count = volume + running.volume, quote + running.quote_volume, count + 1
        if not count:
            return Ticker24h(self.as_of, ref.close, ref.open_time + self.step, None, None, 0.0, 0.0, 0)
        return Ticker24h(self.as_of, ref.close, ref.open_time + self.step, high, low, volume, quote, count)


class TickerBook:
    """A ``RollingTicker`` per symbol (owned by one thread: the writer's)."""

    def __init__(self, interval: str = TICKER_INTERVAL) -> None:
        self.interval = interval
        self._tickers: dict[str, RollingTicker] = {}

    def add(self, rows: Iterable[KlineRow]) -> set[str]:
        """Feed candles of the ticker interval (others are ignored); returns the symbols touched."""
        touched: set[str] = set()
        for row in rows:
            if row.interval != self.interval:
                continue
            ticker = self._tickers.get(row.symbol)
            if ticker is None:
                ticker = self._tickers[row.symbol] = RollingTicker(self.interval)
            ticker.add(row)
            touched.add(row.symbol)
        return touched

    def figures(self, symbol: str) -> Ticker24h | None:
        ticker = self._tickers.get(symbol)
        return None if ticker is None else ticker.figures()

    def forget(self, symbols: Iterable[str]) -> None:
        for symbol in symbols:
            self._tickers.pop(symbol, None)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._tickers


def ticker_of(rows: Iterable[KlineRow], interval: str = TICKER_INTERVAL) -> Ticker24h | None:
    """The figures of one symbol from its stored candles (the cache-miss path)."""
    ticker = RollingTicker(interval)
    for row in rows:
        ticker.add(row)
    return ticker.figures()
