"""US minute bars as column arrays, each a pure function of (seed, ticker, session minute), and their
exact aggregates.

Prices are integer cents (a one-cent tick), volumes integer shares, ``value`` (the traded dollar
amount) integer micro-dollars, so a 5-minute bar built from five minute bars, a streamed bar and a
REST row can never differ by rounding; the VWAP a client sees is ``value / volume`` rounded to six
decimals, as Alpaca prints it. The price walk reuses the Binance side's value-noise layers
(``minutes.level_sum``) evaluated at the trading-minute index; volume follows the intraday U-shape
(heavy at the open and the close). The IEX feed carries the same prices and a few percent of the
consolidated (SIP) volume and trades.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tacore.exchange_sim.alpaca.sessions import MINUTE_MS, MinuteSpan
from tacore.exchange_sim.alpaca.universe import UsProfile
from tacore.exchange_sim.minutes import STEP, level_sum, uniform_noise

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

FEEDS = ("sip", "iex")
_WICK = STEP * 0.5  # typical distance of a minute's high/low beyond its open/close, relative
_GAP = 0.004  # per-session price offset (the overnight gap), relative
_S_HIGH, _S_LOW, _S_VOL, _S_IEX, _S_SIZE, _S_VWAP, _S_GAP = range(200, 207)
_OPEN_BOOST, _OPEN_DECAY = 2.2, 20.0  # the intraday U-shape: extra volume after the open ...
_CLOSE_BOOST, _CLOSE_DECAY = 1.6, 15.0  # ... and before the close
_FULL_SESSION = 390
_MICRO_PER_CENT = 10_000


def _u_shape(position: F64, length: F64 | float) -> F64:
    return (1.0 + _OPEN_BOOST * np.exp(-position / _OPEN_DECAY)
            + _CLOSE_BOOST * np.exp(-(length - 1.0 - position) / _CLOSE_DECAY))


_FULL_WEIGHT = float(np.sum(_u_shape(np.arange(_FULL_SESSION, dtype=np.float64), float(_FULL_SESSION))))


@dataclass(frozen=True, slots=True)
class BarColumns:
    """Bars as parallel arrays. ``start`` is each bar's timestamp (epoch ms)."""

    start: I64
    open: I64  # cents
    high: I64
    low: I64
    close: I64
    volume: I64  # shares
    trades: I64
    value: I64  # micro-dollars traded (VWAP x volume)

    def __len__(self) -> int:
        return len(self.start)

    def take(self, index: npt.NDArray[np.int64] | npt.NDArray[np.bool_] | list[int] | slice) -> BarColumns:
        return BarColumns(self.start[index], self.open[index], self.high[index], self.low[index],
                          self.close[index], self.volume[index], self.trades[index], self.value[index])


def empty_columns() -> BarColumns:
    z = np.zeros(0, dtype=np.int64)
    return BarColumns(z, z, z, z, z, z, z, z)


def concat_columns(parts: list[BarColumns]) -> BarColumns:
    if not parts:
        return empty_columns()
    if len(parts) == 1:
        return parts[0]
    return BarColumns(*(np.concatenate([getattr(p, f) for p in parts]) for f in BarColumns.__slots__))


def minute_bars(p: UsProfile, span: MinuteSpan, feed: str) -> BarColumns:
    """The closed minute bars of every minute of ``span`` on ``feed`` (``sip`` or ``iex``)."""
    k = span.index
    if not len(k):
        return empty_columns()
    gap = _GAP * uniform_noise(p.key, _S_GAP, span.session)
    x0 = level_sum(p.key, k) + gap
    x1 = level_sum(p.key, k + 1) + gap
    o = np.maximum(np.rint(p.price_cents * (1.0 + x0)), 1.0).astype(np.int64)
    c = np.maximum(np.rint(p.price_cents * (1.0 + x1)), 1.0).astype(np.int64)
    wick = p.price_cents * _WICK
    up = np.ceil(wick * (1.5 + 0.5 * uniform_noise(p.key, _S_HIGH, k))).astype(np.int64)
    down = np.ceil(wick * (1.5 + 0.5 * uniform_noise(p.key, _S_LOW, k))).astype(np.int64)
    h = np.maximum(o, c) + up
    lo = np.maximum(np.minimum(o, c) - down, 1)
    weight = _u_shape(span.position.astype(np.float64), span.length.astype(np.float64)) / _FULL_WEIGHT
    move = np.minimum(np.abs(x1 - x0) / STEP, 3.0)
    size = 0.7 + 0.3 * uniform_noise(p.key, _S_VOL, k) + 0.25 * move
    volume = np.maximum(np.rint(p.daily_volume * weight * size), 1.0).astype(np.int64)
    if feed == "iex":
        share = p.iex_share * (1.0 + 0.5 * uniform_noise(p.key, _S_IEX, k))
        volume = np.maximum(np.rint(volume.astype(np.float64) * share), 1.0).astype(np.int64)
    trade_size = p.trade_size * (1.0 + 0.3 * uniform_noise(p.key, _S_SIZE, k))
    trades = np.maximum(np.rint(volume.astype(np.float64) / trade_size), 1.0).astype(np.int64)
    typical = (o + h + lo + c).astype(np.float64) * (_MICRO_PER_CENT / 4)
    spread = (h - lo).astype(np.float64) * _MICRO_PER_CENT
    vwap = np.rint(typical + 0.2 * spread * uniform_noise(p.key, _S_VWAP, k)).astype(np.int64)
    vwap = np.clip(vwap, lo * _MICRO_PER_CENT, h * _MICRO_PER_CENT)
    return BarColumns(span.minute * MINUTE_MS, o, h, lo, c, volume, trades, vwap * volume)


def aggregate(bars: BarColumns, bucket: I64) -> BarColumns:
    """Bars grouped by ``bucket`` (non-decreasing, one value per bar): the bucket's bars as one bar each,
    stamped with the bucket value. Exact: first open, last close, max/min, integer sums."""
    if not len(bars):
        return bars
    edges = np.flatnonzero(np.diff(bucket)) + 1
    starts = np.concatenate(([0], edges)).astype(np.int64)
    ends = np.concatenate((edges, [len(bucket)])).astype(np.int64) - 1
    return BarColumns(
        bucket[starts], bars.open[starts], np.maximum.reduceat(bars.high, starts),
        np.minimum.reduceat(bars.low, starts), bars.close[ends], np.add.reduceat(bars.volume, starts),
        np.add.reduceat(bars.trades, starts), np.add.reduceat(bars.value, starts))


def vwap_micro(value: int, volume: int) -> int:
    """Volume-weighted price in micro-dollars, rounded half up (as the aggregates print it)."""
    return (2 * value + volume) // (2 * volume) if volume else 0
