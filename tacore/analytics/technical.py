"""The technical picture of one symbol: TA-Lib indicators over its closed candles, and the reply of
``analyze.stock {"analysis_type": "technical"}``.

Every indicator comes from TA-Lib (``talib``), none is written here; how many candles each needs is
TA-Lib's own lookback (``talib.abstract``) plus one. An indicator without enough candles is reported as
missing (``needs``/``have``) and left out of the verdicts; below ``MIN_CANDLES`` there is no signal at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
import talib
from talib import abstract

from tacore.analytics.candles import Ohlcv
from tacore.analytics.levels import price_levels
from tacore.analytics.verdicts import judge

F64 = npt.NDArray[np.float64]

#: (name in replies, TA-Lib function, parameters)
SPECS: tuple[tuple[str, str, dict[str, float]], ...] = (
    ("sma_20", "SMA", {"timeperiod": 20}), ("sma_50", "SMA", {"timeperiod": 50}),
    ("sma_200", "SMA", {"timeperiod": 200}), ("ema_20", "EMA", {"timeperiod": 20}),
    ("ema_50", "EMA", {"timeperiod": 50}), ("ema_200", "EMA", {"timeperiod": 200}),
    ("rsi_14", "RSI", {"timeperiod": 14}),
    ("macd_12_26_9", "MACD", {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9}),
    ("bollinger_20_2", "BBANDS", {"timeperiod": 20, "nbdevup": 2.0, "nbdevdn": 2.0}),
    ("atr_14", "ATR", {"timeperiod": 14}), ("adx_14", "ADX", {"timeperiod": 14}),
    ("stochastic_14_3_3", "STOCH", {"fastk_period": 14, "slowk_period": 3, "slowd_period": 3}),
    ("obv", "OBV", {}),
)
#: the indicators a signal cannot do without; the 50- and 200-bar averages are optional
CORE = ("sma_20", "ema_20", "rsi_14", "macd_12_26_9", "bollinger_20_2", "atr_14", "adx_14", "stochastic_14_3_3")
SLOPE_BARS = 20
#: a cross counts as fresh this many bars after it happened
MACD_CROSS_BARS = 3
CROSS_BARS = 5


@cache
def needs(name: str) -> int:
    """Candles ``name`` needs for its latest value and the one before it (crosses compare the two)."""
    _, function, params = next(s for s in SPECS if s[0] == name)
    fn = abstract.Function(function)  # type: ignore[attr-defined]
    fn.set_parameters(params)
    return int(fn.lookback) + 2


def min_candles() -> int:
    return max(needs(name) for name in CORE)


@dataclass
class Snapshot:
    """Latest (and previous) indicator values; None where there were too few candles."""

    close: float
    prev_close: float | None
    values: dict[str, float | None] = field(default_factory=dict)
    missing: list[dict[str, Any]] = field(default_factory=list)

    def get(self, key: str) -> float | None:
        return self.values.get(key)


def _last(series: F64, back: int = 0) -> float | None:
    if series.size <= back:
        return None
    value = float(series[-1 - back])
    return value if math.isfinite(value) else None


def _recent_cross(gap: F64, bars: int) -> float:
    """+1 when ``gap`` turned positive within the last ``bars`` bars, -1 when it turned negative, else 0."""
    recent = gap[-(bars + 1):]
    recent = recent[np.isfinite(recent)]
    if recent.size < 2:
        return 0.0
    if recent[-1] > 0 and bool(np.any(recent[:-1] <= 0)):
        return 1.0
    if recent[-1] < 0 and bool(np.any(recent[:-1] >= 0)):
        return -1.0
    return 0.0


def _percentile_of_last(series: F64) -> float | None:
    """Where the latest value ranks among the window's valid values, 0..1."""
    valid = series[np.isfinite(series)]
    if valid.size < 2:
        return None
    return float(np.mean(valid <= valid[-1]))


def indicators(c: Ohlcv) -> Snapshot:
    """Every indicator of ``SPECS`` whose candles suffice, from TA-Lib."""
    have = c.count
    high, low, close, volume = c.high, c.low, c.close, c.volume
    snap = Snapshot(close=float(close[-1]), prev_close=float(close[-2]) if have > 1 else None)
    v = snap.values
    for name, _, _ in SPECS:
        if have < needs(name):
            snap.missing.append({"indicator": name, "needs": needs(name), "have": have})
    enough = {name for name, _, _ in SPECS if have >= needs(name)}
    for period in (20, 50, 200):
        if f"sma_{period}" in enough:
            v[f"sma_{period}"] = _last(talib.SMA(close, timeperiod=period))
            ema = talib.EMA(close, timeperiod=period)
            v[f"ema_{period}"], v[f"ema_{period}_prev"] = _last(ema), _last(ema, 1)
    if "sma_200" in enough:
        gap = talib.SMA(close, timeperiod=50) - talib.SMA(close, timeperiod=200)
        v["sma_cross"] = _recent_cross(gap, CROSS_BARS)
    if "rsi_14" in enough:
        v["rsi_14"] = _last(talib.RSI(close, timeperiod=14))
    if "macd_12_26_9" in enough:
        macd, signal, hist = talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
        v.update(macd=_last(macd), macd_signal=_last(signal), macd_hist=_last(hist),
                 macd_cross=_recent_cross(hist, MACD_CROSS_BARS))
    if "bollinger_20_2" in enough:
        upper, middle, lower = talib.BBANDS(close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0)
        width = (upper - lower) / middle
        v.update(bb_upper=_last(upper), bb_middle=_last(middle), bb_lower=_last(lower), bb_bandwidth=_last(width),
                 bb_bandwidth_rank=_percentile_of_last(width))
        span = (v["bb_upper"] or 0.0) - (v["bb_lower"] or 0.0)
        v["bb_percent_b"] = (snap.close - (v["bb_lower"] or 0.0)) / span if span > 0 else None
    if "atr_14" in enough:
        natr = talib.NATR(high, low, close, timeperiod=14)
        v.update(atr_14=_last(talib.ATR(high, low, close, timeperiod=14)), atr_pct=_last(natr))
        valid = natr[np.isfinite(natr)]
        v["atr_pct_median"] = float(np.median(valid)) if valid.size else None
    if "adx_14" in enough:
        v.update(adx_14=_last(talib.ADX(high, low, close, timeperiod=14)),
                 plus_di_14=_last(talib.PLUS_DI(high, low, close, timeperiod=14)),
                 minus_di_14=_last(talib.MINUS_DI(high, low, close, timeperiod=14)))
    if "stochastic_14_3_3" in enough:
        k, d = talib.STOCH(high, low, close, fastk_period=14, slowk_period=3, slowd_period=3)
        v.update(stoch_k=_last(k), stoch_d=_last(d))
    obv = talib.OBV(close, volume)
    v["obv"] = _last(obv)
    if have >= SLOPE_BARS:
        mean_volume = float(np.mean(volume[-SLOPE_BARS:]))
        obv_slope = _last(talib.LINEARREG_SLOPE(obv, timeperiod=SLOPE_BARS))
        price_slope = _last(talib.LINEARREG_SLOPE(close, timeperiod=SLOPE_BARS))
        # per bar, as a share of the average volume / of the price: comparable across symbols
        v["obv_slope"] = obv_slope / mean_volume if obv_slope is not None and mean_volume > 0 else None
        v["price_slope"] = price_slope / snap.close if price_slope is not None and snap.close else None
    return snap


def _r(value: float | None, digits: int = 8) -> float | None:
    return None if value is None else round(value, digits)


def _indicator_view(v: dict[str, float | None]) -> dict[str, Any]:
    return {
        "sma": {str(p): _r(v.get(f"sma_{p}")) for p in (20, 50, 200)},
        "ema": {str(p): _r(v.get(f"ema_{p}")) for p in (20, 50, 200)},
        "rsi_14": _r(v.get("rsi_14"), 4),
        "macd": {"macd": _r(v.get("macd")), "signal": _r(v.get("macd_signal")), "histogram": _r(v.get("macd_hist"))},
        "bollinger": {"upper": _r(v.get("bb_upper")), "middle": _r(v.get("bb_middle")), "lower": _r(v.get("bb_lower")),
                      "bandwidth": _r(v.get("bb_bandwidth"), 6), "percent_b": _r(v.get("bb_percent_b"), 4)},
        "atr_14": _r(v.get("atr_14")), "atr_pct": _r(v.get("atr_pct"), 4),
        "adx": {"adx": _r(v.get("adx_14"), 4), "plus_di": _r(v.get("plus_di_14"), 4),
                "minus_di": _r(v.get("minus_di_14"), 4)},
        "stochastic": {"k": _r(v.get("stoch_k"), 4), "d": _r(v.get("stoch_d"), 4)},
        "obv": {"value": _r(v.get("obv"), 4), "slope": _r(v.get("obv_slope"), 6)},
    }


def technical_analysis(c: Ohlcv, *, requested: int) -> dict[str, Any]:
    """The ``analyze.stock`` technical reply for these candles (see docs/analytics.md)."""
    base: dict[str, Any] = {
        "symbol": c.symbol, "analysis_type": "technical", "interval": c.interval,
        "candles": {"used": c.count, "requested": requested,
                    "first_open_time": int(c.open_time[0]) if c.count else None,
                    "last_open_time": int(c.open_time[-1]) if c.count else None},
    }
    minimum = min_candles()
    if c.count < minimum:
        binding = max(CORE, key=needs)
        base.update(
            status="insufficient_history", needed=minimum, signal=None,
            missing=[{"indicator": name, "needs": needs(name), "have": c.count} for name, _, _ in SPECS
                     if c.count < needs(name)],
            message=(f"{c.symbol} has {c.count} closed {c.interval} candles stored; technical analysis needs at "
                     f"least {minimum} ({binding} needs that many for a value and the one before); "
                     "kline.add_symbols subscribes a symbol and fetches its history"))
        return base
    snap = indicators(c)
    verdicts, signal = judge(snap)
    change = (snap.close / snap.prev_close - 1.0) * 100.0 if snap.prev_close else None
    base.update(
        status="partial" if snap.missing else "ok",
        price={"close": snap.close, "open_time": int(c.open_time[-1]), "change_pct": _r(change, 4),
               "live": c.live_close, "live_time": c.live_time},
        indicators=_indicator_view(snap.values),
        levels=price_levels(c, snap.get("atr_14")),
        verdicts=verdicts, signal=signal, missing=snap.missing,
    )
    return base
