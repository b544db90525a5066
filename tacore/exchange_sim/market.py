"""The market as the exchange serves it: closed candles (cached) and running candles at any time.

Candles come from ``minutes.py`` (pure functions of seed, symbol and minute). Closed candles up to
1h are built from an hour of minutes generated in one pass, longer ones in one vectorised pass;
either way they equal ``closed_range`` exactly, since aggregation is on integers. A running candle
is the merge of the closed minutes since it opened and the running minute, whose figures follow
that minute's 5-second path, so live updates converge on the candle that closes.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass

from tacore.exchange_sim.candle import Candle
from tacore.exchange_sim.intervals import CHILD_INTERVAL, INTERVAL_MS, MINUTE_MS, close_time_of, open_time_of
from tacore.exchange_sim.minutes import (
    GRID_MS,
    IntraMinute,
    SymbolProfile,
    aggregate,
    intra_minute,
    make_profile,
    minute_block,
)

_HOUR_MINUTES = 60


@dataclass(frozen=True, slots=True)
class MinuteDetail:
    """The closed figures of one minute plus its intra-minute path, for live partial updates."""

    final: Candle
    path: tuple[int, ...]  # quantized price at each 5-second grid point, 0..12
    running_high: tuple[int, ...]
    running_low: tuple[int, ...]
    tau_high_ms: int  # offset of the trade that makes the minute's high
    tau_low_ms: int

    def at(self, elapsed_ms: int, tick: int, lot: int) -> Candle:
        """The minute as seen ``elapsed_ms`` after its open (0 <= elapsed < 60000)."""
        f = self.final
        j, w = divmod(elapsed_ms, GRID_MS)
        a, b = self.path[j], self.path[j + 1]
        close = (a + (b - a) * w // GRID_MS) // tick * tick
        high = f.high if elapsed_ms >= self.tau_high_ms else max(self.running_high[j], close)
        low = f.low if elapsed_ms >= self.tau_low_ms else min(self.running_low[j], close)
        high, low = max(high, close), min(low, close)
        n = 1 + (f.trades - 1) * elapsed_ms // MINUTE_MS
        return Candle(
            f.open_time,
            f.close_time,
            f.open,
            high,
            low,
            close,
            f.volume * elapsed_ms // MINUTE_MS // lot * lot,
            f.quote_volume * elapsed_ms // MINUTE_MS,
            n,
            f.taker_base * elapsed_ms // MINUTE_MS // lot * lot,
            f.taker_quote * elapsed_ms // MINUTE_MS,
            f.first_trade_id,
            f.first_trade_id + n - 1,
        )


@dataclass(frozen=True, slots=True)
class _Hour:
    """One hour of closed minutes plus what live updates inside each minute need."""

    candles: list[Candle]
    intra: IntraMinute


class Market:
    """Closed candles (cached) and open candles at any simulated time, for any listed symbol."""

    def __init__(self, seed: int = 0, cache_size: int = 20_000) -> None:
        self.seed = seed
        self._profiles: dict[str, SymbolProfile] = {}
        self._closed: OrderedDict[tuple[str, str, int], Candle] = OrderedDict()
        self._cache_size = cache_size
        self._details: OrderedDict[tuple[str, int], MinuteDetail] = OrderedDict()
        self._prefix: OrderedDict[tuple[str, int], dict[str, Candle | None]] = OrderedDict()
        self._hours: OrderedDict[tuple[str, int], _Hour] = OrderedDict()

    def profile(self, symbol: str) -> SymbolProfile:
        """The symbol's constants (memoised)."""
        prof = self._profiles.get(symbol)
        if prof is None:
            prof = self._profiles[symbol] = make_profile(symbol, self.seed)
        return prof

    def closed_range(self, symbol: str, interval: str, first_open: int, count: int) -> list[Candle]:
        """``count`` consecutive closed candles from ``first_open`` (aligned), oldest first."""
        if count <= 0:
            return []
        prof = self.profile(symbol)
        k = INTERVAL_MS[interval] // MINUTE_MS
        per_chunk = max(1, 65_536 // k)
        out: list[Candle] = []
        first_minute = first_open // MINUTE_MS
        done = 0
        while done < count:
            rows = min(per_chunk, count - done)
            block = minute_block(prof, first_minute + done * k, rows * k)
            out.extend(aggregate(block, k, interval))
            done += rows
        return out

    def closed(self, symbol: str, interval: str, open_time: int) -> Candle:
        """One closed candle, cached (the live feed asks for the same ones repeatedly).

        Up to 1h it is built from the hour's minutes (generated once per hour), beyond that in one
        vectorised pass; either way it equals ``closed_range`` exactly (integer aggregation).
        """
        key = (symbol, interval, open_time)
        candle = self._closed.get(key)
        if candle is not None:
            return candle
        k = INTERVAL_MS[interval] // MINUTE_MS
        if k <= _HOUR_MINUTES:
            minute = open_time // MINUTE_MS
            hour = self._hour(symbol, minute // _HOUR_MINUTES)
            first = minute % _HOUR_MINUTES
            parts = hour.candles[first : first + k]
            candle = parts[0]
            for part in parts[1:]:
                candle = candle.then(part)
            candle = candle.with_span(open_time, close_time_of(open_time, interval))
        else:
            candle = self.closed_range(symbol, interval, open_time, 1)[0]
        self._closed[key] = candle
        if len(self._closed) > self._cache_size:
            self._closed.popitem(last=False)
        return candle

    def _hour(self, symbol: str, hour: int) -> _Hour:
        """An hour of minutes with their intra-minute paths, generated in one vectorised pass."""
        key = (symbol, hour)
        chunk = self._hours.get(key)
        if chunk is not None:
            return chunk
        prof = self.profile(symbol)
        first_minute = hour * _HOUR_MINUTES
        block = minute_block(prof, first_minute, _HOUR_MINUTES)
        candles = aggregate(block, 1, "1m")
        chunk = _Hour(candles, intra_minute(prof, block))
        self._hours[key] = chunk
        if len(self._hours) > 512:
            self._hours.popitem(last=False)
        return chunk

    def minute_detail(self, symbol: str, minute: int) -> MinuteDetail:
        """The running minute's closed figures and 5-second path (cached per minute)."""
        key = (symbol, minute)
        detail = self._details.get(key)
        if detail is not None:
            return detail
        hour = self._hour(symbol, minute // _HOUR_MINUTES)
        i = minute % _HOUR_MINUTES
        candle = hour.candles[i]
        path = hour.intra.path(i, candle)
        highs = tuple(itertools.accumulate(path, max))
        lows = tuple(itertools.accumulate(path, min))
        tau_high, tau_low = int(hour.intra.tau_high[i]), int(hour.intra.tau_low[i])
        detail = MinuteDetail(candle, path, highs, lows, tau_high, tau_low)
        self._details[key] = detail
        if len(self._details) > 2048:
            self._details.popitem(last=False)
        return detail

    def _prefixes(self, symbol: str, minute: int) -> dict[str, Candle | None]:
        """For each interval, the closed minutes of its running candle before ``minute``, merged."""
        key = (symbol, minute)
        cached = self._prefix.get(key)
        if cached is not None:
            return cached
        t = minute * MINUTE_MS
        prefixes: dict[str, Candle | None] = {"1m": None}
        for interval, child in CHILD_INTERVAL.items():
            acc: Candle | None = None
            step = INTERVAL_MS[child]
            for ot in range(open_time_of(t, interval), open_time_of(t, child), step):
                piece = self.closed(symbol, child, ot)
                acc = piece if acc is None else acc.then(piece)
            below = prefixes[child]
            if below is not None:
                acc = below if acc is None else acc.then(below)
            prefixes[interval] = acc
        self._prefix[key] = prefixes
        if len(self._prefix) > 1024:
            self._prefix.popitem(last=False)
        return prefixes

    def open_candle(self, symbol: str, interval: str, now_ms: int) -> Candle:
        """The running candle of ``interval`` as the exchange shows it at ``now_ms``."""
        minute, elapsed = divmod(now_ms, MINUTE_MS)
        prof = self.profile(symbol)
        part = self.minute_detail(symbol, minute).at(elapsed, prof.tick, prof.lot)
        if interval == "1m":
            return part
        before = self._prefixes(symbol, minute)[interval]
        merged = part if before is None else before.then(part)
        start = open_time_of(now_ms, interval)
        return merged.with_span(start, close_time_of(start, interval))
