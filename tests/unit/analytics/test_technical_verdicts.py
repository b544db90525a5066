"""Verdict rules and the overall signal, and the technical analysis of real TA-Lib output on known series."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import talib

from tacore.analytics.candles import Ohlcv
from tacore.analytics.levels import price_levels, swing_points
from tacore.analytics.technical import min_candles, technical_analysis
from tacore.analytics.verdicts import BUY_AT, judge

DAY = 86_400_000


class Values:
    def __init__(self, close: float, **values: float | None) -> None:
        self.close = close
        self.values = values

    def get(self, key: str) -> float | None:
        return self.values.get(key)


BULL: dict[str, Any] = dict(sma_200=90.0, sma_50=97.0, ema_20=99.0, ema_50=97.0, adx_14=31.0, plus_di_14=30.0,
                            minus_di_14=12.0, rsi_14=62.0, macd_hist=0.4, macd_cross=0.0, stoch_k=60.0, stoch_d=55.0,
                            bb_percent_b=0.8, obv_slope=0.2, price_slope=0.01, atr_pct=2.0, atr_pct_median=2.1,
                            bb_bandwidth_rank=0.5)


def _mirror(values: dict[str, Any]) -> dict[str, Any]:
    """The same picture upside down around 100 (for the price levels) and 50 (for oscillators)."""
    out = dict(values)
    for key in ("sma_200", "sma_50", "ema_20", "ema_50"):
        out[key] = 200.0 - values[key]
    out.update(plus_di_14=values["minus_di_14"], minus_di_14=values["plus_di_14"], rsi_14=100 - values["rsi_14"],
               macd_hist=-values["macd_hist"], stoch_k=100 - values["stoch_k"], stoch_d=100 - values["stoch_d"],
               bb_percent_b=1 - values["bb_percent_b"], obv_slope=-values["obv_slope"],
               price_slope=-values["price_slope"])
    return out


def test_a_rising_stack_with_a_strong_adx_is_a_buy_with_its_reasons() -> None:
    verdicts, signal = judge(Values(100.0, **BULL))
    assert signal["action"] == "buy" and signal["score"] >= BUY_AT
    assert verdicts["trend"] == {"direction": "up", "strength": "strong", "points": 40, "max_points": 40}
    assert verdicts["momentum"]["bias"] == "bullish" and not verdicts["momentum"]["overbought"]
    rules = [r["rule"] for r in signal["reasons"]]
    assert rules[:4] == ["price_vs_sma_200", "sma_50_vs_sma_200", "ema_stack", "adx_direction"]  # largest first
    assert "close 11.11 % above SMA 200" in signal["reasons"][0]["detail"]
    assert signal["skipped"] == []


def test_the_mirror_image_is_a_sell_with_the_opposite_score() -> None:
    _, bull = judge(Values(100.0, **BULL))
    verdicts, bear = judge(Values(100.0, **_mirror(BULL)))
    assert bear["action"] == "sell" and bear["score"] == -bull["score"]
    assert verdicts["trend"]["direction"] == "down"


def test_overbought_momentum_counts_against_buying_and_is_flagged() -> None:
    hot = {**BULL, "rsi_14": 78.0, "stoch_k": 92.0, "stoch_d": 95.0, "bb_percent_b": 1.2}
    verdicts, signal = judge(Values(100.0, **hot))
    _, calm = judge(Values(100.0, **BULL))
    assert verdicts["momentum"]["overbought"] and signal["score"] < calm["score"]
    by_rule = {r["rule"]: r for r in signal["reasons"]}
    assert by_rule["rsi"]["points"] == -10 and by_rule["stochastic"]["points"] == -10
    assert by_rule["bollinger_percent_b"]["points"] == -5


def test_missing_long_averages_are_skipped_and_do_not_dilute_the_score() -> None:
    short = {k: v for k, v in BULL.items() if k not in ("sma_200", "sma_50")}
    _, signal = judge(Values(100.0, **short))
    assert [s["rule"] for s in signal["skipped"]] == ["price_vs_sma_200", "sma_50_vs_sma_200"]
    assert signal["max_points"] == 80 - 20
    assert signal["score"] == round(100 * signal["points"] / signal["max_points"])


def test_no_trend_and_mixed_momentum_is_a_hold() -> None:
    flat = {**BULL, "sma_200": 99.0, "sma_50": 98.0, "ema_20": 100.5, "ema_50": 99.5, "adx_14": 12.0,
            "rsi_14": 49.0, "macd_hist": 0.01, "stoch_k": 50.0, "stoch_d": 50.0, "bb_percent_b": 0.5}
    verdicts, signal = judge(Values(100.0, **flat))
    assert signal["action"] == "hold" and abs(signal["score"]) < BUY_AT
    assert verdicts["trend"]["direction"] == "sideways" and verdicts["trend"]["strength"] == "weak"


def test_volatility_regime_and_squeeze_come_from_atr_and_bandwidth() -> None:
    verdicts, _ = judge(Values(100.0, **{**BULL, "atr_pct": 4.0, "atr_pct_median": 2.0, "bb_bandwidth_rank": 0.05}))
    assert verdicts["volatility"]["regime"] == "high" and verdicts["volatility"]["squeeze"] is True
    verdicts, _ = judge(Values(100.0, **{**BULL, "atr_pct": 1.0, "atr_pct_median": 2.0}))
    assert verdicts["volatility"]["regime"] == "low"


def _ohlcv(close: np.ndarray, volume: np.ndarray | None = None) -> Ohlcv:
    n = close.size
    volume = volume if volume is not None else np.full(n, 1000.0)
    return Ohlcv("TEST", "1d", np.arange(n, dtype=np.int64) * DAY, np.r_[close[:1], close[:-1]], close * 1.01,
                 close * 0.99, close, volume, None, None)


def test_indicators_are_talibs_on_the_candles_given() -> None:
    rng = np.random.default_rng(2)
    close = 100 * np.cumprod(1 + rng.normal(0.0005, 0.02, 400))
    reply = technical_analysis(_ohlcv(close), requested=400)
    assert reply["status"] == "ok" and reply["missing"] == []
    ind = reply["indicators"]
    assert ind["rsi_14"] == pytest.approx(talib.RSI(close, 14)[-1], abs=1e-4)
    assert ind["sma"]["200"] == pytest.approx(talib.SMA(close, 200)[-1], abs=1e-7)
    assert ind["ema"]["50"] == pytest.approx(talib.EMA(close, 50)[-1], abs=1e-7)
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    assert ind["macd"] == pytest.approx({"macd": macd[-1], "signal": signal[-1], "histogram": hist[-1]}, abs=1e-7)
    assert ind["atr_14"] == pytest.approx(talib.ATR(close * 1.01, close * 0.99, close, 14)[-1], abs=1e-7)
    assert ind["adx"]["adx"] == pytest.approx(talib.ADX(close * 1.01, close * 0.99, close, 14)[-1], abs=1e-4)
    k, d = talib.STOCH(close * 1.01, close * 0.99, close, fastk_period=14, slowk_period=3, slowd_period=3)
    assert ind["stochastic"] == pytest.approx({"k": k[-1], "d": d[-1]}, abs=1e-4)
    assert reply["price"]["close"] == close[-1]


def test_a_steady_rise_reads_buy_and_a_steady_fall_reads_sell() -> None:
    rng = np.random.default_rng(4)
    up = 100 * np.cumprod(1 + 0.004 + rng.normal(0, 0.006, 300))
    down = 100 * np.cumprod(1 - 0.004 + rng.normal(0, 0.006, 300))
    assert technical_analysis(_ohlcv(up, np.linspace(1000, 3000, 300)), requested=300)["signal"]["action"] == "buy"
    assert technical_analysis(_ohlcv(down), requested=300)["signal"]["action"] == "sell"


def test_too_few_candles_names_every_missing_indicator() -> None:
    short = technical_analysis(_ohlcv(np.linspace(100, 110, 25)), requested=500)
    assert short["status"] == "insufficient_history" and short["signal"] is None
    assert short["needed"] == min_candles() == 35
    missing = {m["indicator"]: m for m in short["missing"]}
    assert missing["macd_12_26_9"] == {"indicator": "macd_12_26_9", "needs": 35, "have": 25}
    assert "sma_20" not in missing and "rsi_14" not in missing
    partial = technical_analysis(_ohlcv(np.linspace(100, 130, 120)), requested=500)
    assert partial["status"] == "partial" and partial["indicators"]["sma"]["200"] is None
    assert {m["indicator"] for m in partial["missing"]} == {"sma_200", "ema_200"}
    empty = technical_analysis(_ohlcv(np.empty(0)), requested=500)
    assert empty["status"] == "insufficient_history" and empty["candles"]["used"] == 0


def test_swing_levels_and_pivots() -> None:
    # a saw-tooth: peaks at 110 and 112, troughs at 95 and 96, last close 104
    close = np.array([100, 103, 106, 110, 106, 102, 98, 95, 98, 102, 106, 109, 112, 108, 104, 100, 96, 99, 101, 104.0])
    high, low = close + 0.5, close - 0.5
    highs, lows = swing_points(high, low, bars=3)
    assert high[highs].tolist() == [110.5, 112.5] and low[lows].tolist() == [94.5, 95.5]
    candles = Ohlcv("T", "1d", np.arange(close.size, dtype=np.int64), close, high, low, close, np.ones(close.size),
                    None, None)
    levels = price_levels(candles, atr=3.0, swing_bars=3)  # half an ATR: 95.5 and 94.5 merge, 110.5 and 112.5 not
    assert [lv["price"] for lv in levels["resistance"]] == [110.5, 112.5]
    assert levels["support"] == [{"price": 95.0, "touches": 2, "last_touch": 16}]
    p = (104.5 + 103.5 + 104) / 3
    assert levels["pivot"] == pytest.approx({"p": p, "r1": 2 * p - 103.5, "s1": 2 * p - 104.5,
                                             "r2": p + 1.0, "s2": p - 1.0})
