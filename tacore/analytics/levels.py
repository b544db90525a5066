"""Support and resistance: swing highs and lows clustered into levels, and the classic floor pivots.

A swing high is a candle whose high is the highest of the ``SWING_BARS`` candles either side of it
(TA-Lib's rolling ``MAX``/``MIN`` find them); swing points closer than half an ATR merge into one level,
whose ``touches`` say how often price turned there. Levels above the last close are resistance, below it
support, nearest first. Pivots come from the last closed candle: P = typical price (TA-Lib ``TYPPRICE``),
R1 = 2P - L, S1 = 2P - H, R2 = P + (H - L), S2 = P - (H - L).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import talib

from tacore.analytics.candles import Ohlcv

F64 = npt.NDArray[np.float64]
SWING_BARS = 5
LEVELS_EACH_SIDE = 3


def swing_points(high: F64, low: F64, bars: int = SWING_BARS) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Indexes of swing highs and swing lows (each the extreme of ``bars`` candles either side)."""
    window = 2 * bars + 1
    if high.size < window:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty
    top = talib.MAX(high, timeperiod=window)[window - 1:]  # top[i]: max of high[i .. i + window - 1]
    bottom = talib.MIN(low, timeperiod=window)[window - 1:]
    centre = np.arange(bars, high.size - bars)
    return centre[high[centre] == top], centre[low[centre] == bottom]


def _clusters(prices: F64, times: npt.NDArray[np.int64], tolerance: float) -> list[dict[str, Any]]:
    order = np.argsort(prices)
    levels: list[dict[str, Any]] = []
    group: list[int] = []
    for i in order:
        if group and prices[i] - prices[group[-1]] > tolerance:
            levels.append(_level(prices, times, group))
            group = []
        group.append(int(i))
    if group:
        levels.append(_level(prices, times, group))
    return levels


def _level(prices: F64, times: npt.NDArray[np.int64], group: list[int]) -> dict[str, Any]:
    return {"price": round(float(np.mean(prices[group])), 8), "touches": len(group),
            "last_touch": int(max(times[group]))}


def price_levels(c: Ohlcv, atr: float | None, swing_bars: int = SWING_BARS) -> dict[str, Any]:
    """Nearest support and resistance levels and the floor pivots of the last candle."""
    close = float(c.close[-1])
    tolerance = 0.5 * atr if atr else 0.005 * close
    highs, lows = swing_points(c.high, c.low, swing_bars)
    prices = np.concatenate([c.high[highs], c.low[lows]])
    times = np.concatenate([c.open_time[highs], c.open_time[lows]])
    levels = _clusters(prices, times, tolerance)
    resistance = sorted((lv for lv in levels if lv["price"] > close), key=lambda lv: lv["price"])
    support = sorted((lv for lv in levels if lv["price"] < close), key=lambda lv: -lv["price"])
    h, lo = float(c.high[-1]), float(c.low[-1])
    p = float(talib.TYPPRICE(c.high[-1:], c.low[-1:], c.close[-1:])[0])
    return {
        "support": support[:LEVELS_EACH_SIDE], "resistance": resistance[:LEVELS_EACH_SIDE],
        "pivot": {"p": round(p, 8), "r1": round(2 * p - lo, 8), "s1": round(2 * p - h, 8),
                  "r2": round(p + (h - lo), 8), "s2": round(p - (h - lo), 8)},
        "range": {"high": float(np.max(c.high)), "low": float(np.min(c.low))},
    }
