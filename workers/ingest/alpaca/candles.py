"""Running US candles of the six longer intervals, kept up to date from the stream's minute bars.

Each running candle is merged minute by minute (first open, max/min, last close, sums) and remembers
the last minute it holds, so a minute already counted (in a REST bar that seeded it, or sent twice)
is never counted again. These rows are provisional: when a candle's interval or session ends the feed
fetches Alpaca's own aggregate, which replaces it as the closed candle (``due`` says which).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tacore.intervals import INTERVAL_MS
from tacore.store.klines import KlineRow, version_of
from workers.ingest.alpaca.sessions import MINUTE_MS, UsCandleClock


@dataclass(slots=True)
class Running:
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trades: int
    through: int  # open time of the last minute included
    closes_at: int  # when the candle is complete (interval or session end)

    def row(self, symbol: str, interval: str, event_time: int) -> KlineRow:
        return KlineRow(symbol, interval, self.open_time, self.open_time + INTERVAL_MS[interval] - 1, self.open,
                        self.high, self.low, self.close, self.volume, self.quote_volume, self.trades, 0.0, 0.0,
                        False, event_time, version_of(False, event_time))


@dataclass(frozen=True, slots=True)
class Ended:
    """A running candle whose interval or session is over: its closed candle is to be fetched."""

    symbol: str
    interval: str
    candle: Running

    @property
    def open_time(self) -> int:
        return self.candle.open_time

    def closed_row(self) -> KlineRow:
        """The merge of its minutes as the closed candle (when Alpaca has no aggregate for it)."""
        row = self.candle.row(self.symbol, self.interval, self.candle.closes_at)
        return row._replace(closed=True, version=version_of(True, self.candle.closes_at))


class RunningCandles:
    def __init__(self, clock: UsCandleClock) -> None:
        self.clock = clock
        self._running: dict[tuple[str, str], Running] = {}
        self._ended: list[Ended] = []  # replaced by a newer bucket before ``due`` saw them

    def __len__(self) -> int:
        return len(self._running)

    def seed(self, row: KlineRow, through: int) -> None:
        """Start from a running bar fetched over REST that holds the minutes up to ``through``."""
        key = (row.symbol, row.interval)
        current = self._running.get(key)
        if current is not None and (current.open_time > row.open_time
                                    or (current.open_time == row.open_time and current.through >= through)):
            return
        if current is not None and current.open_time < row.open_time:
            self._ended.append(Ended(row.symbol, row.interval, current))
        self._running[key] = Running(row.open_time, row.open, row.high, row.low, row.close, row.volume,
                                     row.quote_volume, row.trades, through,
                                     self.clock.close_ms(row.open_time, row.interval))

    def add_minute(self, symbol: str, interval: str, minute: int, bar: dict[str, Any]) -> KlineRow | None:
        """Merge one minute bar; the candle's new running row, or None when the minute was already in."""
        open_time = minute - minute % INTERVAL_MS[interval]
        key = (symbol, interval)
        current = self._running.get(key)
        o, h, lo, c = float(bar["o"]), float(bar["h"]), float(bar["l"]), float(bar["c"])
        volume = float(bar["v"])
        quote = volume * float(bar.get("vw", 0.0))
        trades = int(bar.get("n", 0))
        if current is None or current.open_time < open_time:
            if current is not None:  # a bucket ended without its close being collected: collect it now
                self._ended.append(Ended(symbol, interval, current))
            current = Running(open_time, o, h, lo, c, volume, quote, trades, minute,
                              self.clock.close_ms(open_time, interval))
            self._running[key] = current
        elif current.open_time > open_time or minute <= current.through:
            return None
        else:
            current.high, current.low, current.close = max(current.high, h), min(current.low, lo), c
            current.volume += volume
            current.quote_volume += quote
            current.trades += trades
            current.through = minute
        return current.row(symbol, interval, minute + MINUTE_MS)

    def due(self, now_ms: int) -> Iterator[Ended]:
        """Candles complete at ``now_ms``; they stop running."""
        ended, self._ended = self._ended, []
        yield from ended
        done = [key for key, run in self._running.items() if run.closes_at <= now_ms]
        for key in done:
            yield Ended(key[0], key[1], self._running.pop(key))

    def forget(self, symbol: str, interval: str) -> None:
        self._running.pop((symbol, interval), None)

    def forget_if(self, symbol: str, interval: str, closed_open_time: int) -> None:
        """A closed candle arrived: a running one at or before it is over."""
        current = self._running.get((symbol, interval))
        if current is not None and current.open_time <= closed_open_time:
            del self._running[(symbol, interval)]
