"""From indicator values to verdicts and a buy/hold/sell signal, by explicit rules with points.

Each rule looks at one indicator and gives points for (+) or against (-) buying, up to its ``max``; a rule
whose indicator is missing is skipped (listed in ``skipped``) and does not count towards the maximum. The
score is the points as a percentage of the maximum of the rules that ran, -100..100: ``buy`` from
``BUY_AT``, ``sell`` from ``-BUY_AT``, else ``hold``. The reasons are the rules that gave points, largest
first, each with the values it saw.

Groups: trend (price and averages, ADX direction), momentum (RSI, MACD, stochastic), volatility (Bollinger
%B: stretched beyond a band leans against the move; the regime itself gives no points), volume (OBV slope).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

BUY_AT = 25
ADX_STRONG, ADX_TRENDING = 25.0, 20.0


class Values(Protocol):
    close: float

    def get(self, key: str) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Points:
    points: int
    detail: str


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    group: str
    max: int
    needs: tuple[str, ...]
    judge: Callable[[Values], Points]


def _pct(a: float, b: float) -> float:
    return (a / b - 1.0) * 100.0


def _f(v: Values, key: str) -> float:
    value = v.get(key)
    assert value is not None  # a rule runs only when everything it needs is there
    return value


def _price_vs_sma200(v: Values) -> Points:
    gap = _pct(v.close, _f(v, "sma_200"))
    return Points(10 if gap > 0 else -10, f"close {abs(gap):.2f} % {'above' if gap > 0 else 'below'} SMA 200")


def _sma50_vs_sma200(v: Values) -> Points:
    above = _f(v, "sma_50") > _f(v, "sma_200")
    fresh = {1.0: " (golden cross in the last 5 bars)", -1.0: " (death cross in the last 5 bars)"}.get(
        v.get("sma_cross") or 0.0, "")
    return Points(10 if above else -10, f"SMA 50 {'above' if above else 'below'} SMA 200{fresh}")


def _ema_stack(v: Values) -> Points:
    e20, e50 = _f(v, "ema_20"), _f(v, "ema_50")
    if v.close > e20 > e50:
        return Points(10, "close > EMA 20 > EMA 50 (rising stack)")
    if v.close < e20 < e50:
        return Points(-10, "close < EMA 20 < EMA 50 (falling stack)")
    return Points(0, "close and EMA 20/50 mixed")


def _adx_direction(v: Values) -> Points:
    adx, plus, minus = _f(v, "adx_14"), _f(v, "plus_di_14"), _f(v, "minus_di_14")
    side = 1 if plus > minus else -1
    what = f"ADX {adx:.1f}, +DI {plus:.1f} vs -DI {minus:.1f}"
    if adx >= ADX_STRONG:
        return Points(10 * side, f"strong {'up' if side > 0 else 'down'}trend: {what}")
    if adx >= ADX_TRENDING:
        return Points(5 * side, f"developing {'up' if side > 0 else 'down'}trend: {what}")
    return Points(0, f"no directional trend: {what}")


def _rsi(v: Values) -> Points:
    rsi = _f(v, "rsi_14")
    if rsi >= 70:
        return Points(-10, f"RSI {rsi:.1f}: overbought")
    if rsi <= 30:
        return Points(10, f"RSI {rsi:.1f}: oversold")
    return Points(5 if rsi >= 50 else -5, f"RSI {rsi:.1f}: {'bullish' if rsi >= 50 else 'bearish'} half")


def _macd(v: Values) -> Points:
    hist, cross = _f(v, "macd_hist"), v.get("macd_cross") or 0.0
    points = 5 if hist > 0 else -5
    detail = f"MACD histogram {hist:+.4g}"
    if cross:
        points += 5 if cross > 0 else -5
        detail += f", {'bullish' if cross > 0 else 'bearish'} signal-line cross in the last 3 bars"
    return Points(points, detail)


def _stochastic(v: Values) -> Points:
    k, d = _f(v, "stoch_k"), _f(v, "stoch_d")
    what = f"stochastic %K {k:.1f} / %D {d:.1f}"
    if k <= 20:
        return Points(10, f"{what}: oversold, turning up") if k > d else Points(5, f"{what}: oversold")
    if k >= 80:
        return Points(-10, f"{what}: overbought, turning down") if k < d else Points(-5, f"{what}: overbought")
    return Points(0, what)


def _bollinger(v: Values) -> Points:
    b = _f(v, "bb_percent_b")
    if b > 1:
        return Points(-5, f"close above the upper Bollinger band (%B {b:.2f}): stretched")
    if b < 0:
        return Points(5, f"close below the lower Bollinger band (%B {b:.2f}): stretched")
    return Points(0, f"close inside the Bollinger bands (%B {b:.2f})")


def _obv(v: Values) -> Points:
    obv, price = _f(v, "obv_slope"), v.get("price_slope") or 0.0
    rising = obv > 0
    agrees = (obv > 0) == (price > 0)
    kind = "confirms the price" if agrees else ("accumulation against the price" if rising else
                                                 "distribution against the price")
    return Points(5 if rising else -5, f"OBV {'rising' if rising else 'falling'} ({kind})")


RULES: tuple[Rule, ...] = (
    Rule("price_vs_sma_200", "trend", 10, ("sma_200",), _price_vs_sma200),
    Rule("sma_50_vs_sma_200", "trend", 10, ("sma_50", "sma_200"), _sma50_vs_sma200),
    Rule("ema_stack", "trend", 10, ("ema_20", "ema_50"), _ema_stack),
    Rule("adx_direction", "trend", 10, ("adx_14", "plus_di_14", "minus_di_14"), _adx_direction),
    Rule("rsi", "momentum", 10, ("rsi_14",), _rsi),
    Rule("macd", "momentum", 10, ("macd_hist",), _macd),
    Rule("stochastic", "momentum", 10, ("stoch_k", "stoch_d"), _stochastic),
    Rule("bollinger_percent_b", "volatility", 5, ("bb_percent_b",), _bollinger),
    Rule("obv_slope", "volume", 5, ("obv_slope",), _obv),
)


def _group_view(results: list[tuple[Rule, Points]], group: str) -> tuple[int, int]:
    mine = [(rule, p) for rule, p in results if rule.group == group]
    return sum(p.points for _, p in mine), sum(rule.max for rule, _ in mine)


def _ratio(points: int, most: int) -> float:
    return points / most if most else 0.0


def judge(v: Values) -> tuple[dict[str, Any], dict[str, Any]]:
    """(verdicts per group, overall signal) for the indicator values ``v``."""
    results: list[tuple[Rule, Points]] = []
    skipped = []
    for rule in RULES:
        if all(v.get(key) is not None for key in rule.needs):
            results.append((rule, rule.judge(v)))
        else:
            skipped.append({"rule": rule.name, "missing": [k for k in rule.needs if v.get(k) is None]})
    trend, trend_max = _group_view(results, "trend")
    momentum, momentum_max = _group_view(results, "momentum")
    adx = v.get("adx_14")
    rsi, k = v.get("rsi_14"), v.get("stoch_k")
    atr_pct, atr_median = v.get("atr_pct"), v.get("atr_pct_median")
    atr_ratio = atr_pct / atr_median if atr_pct is not None and atr_median else None
    rank = v.get("bb_bandwidth_rank")
    obv_points, _ = _group_view(results, "volume")
    verdicts = {
        "trend": {
            "direction": "up" if _ratio(trend, trend_max) >= 0.4 else
            "down" if _ratio(trend, trend_max) <= -0.4 else "sideways",
            "strength": None if adx is None else "strong" if adx >= ADX_STRONG else
            "moderate" if adx >= ADX_TRENDING else "weak",
            "points": trend, "max_points": trend_max},
        "momentum": {
            "bias": "bullish" if _ratio(momentum, momentum_max) >= 0.3 else
            "bearish" if _ratio(momentum, momentum_max) <= -0.3 else "neutral",
            "overbought": bool((rsi is not None and rsi >= 70) or (k is not None and k >= 80)),
            "oversold": bool((rsi is not None and rsi <= 30) or (k is not None and k <= 20)),
            "points": momentum, "max_points": momentum_max},
        "volatility": {
            "regime": None if atr_ratio is None else "high" if atr_ratio >= 1.5 else
            "low" if atr_ratio <= 1 / 1.5 else "normal",
            "atr_pct": None if atr_pct is None else round(atr_pct, 4),
            "atr_vs_median": None if atr_ratio is None else round(atr_ratio, 4),
            "squeeze": rank is not None and rank <= 0.1},
        "volume": {"obv": "rising" if obv_points > 0 else "falling" if obv_points < 0 else None},
    }
    total = sum(p.points for _, p in results)
    most = sum(rule.max for rule, _ in results)
    score = round(100 * total / most) if most else 0
    action = "buy" if score >= BUY_AT else "sell" if score <= -BUY_AT else "hold"
    reasons = [{"rule": rule.name, "group": rule.group, "points": p.points, "max": rule.max, "detail": p.detail}
               for rule, p in sorted(results, key=lambda rp: -abs(rp[1].points)) if p.points]
    signal = {"action": action, "score": score, "points": total, "max_points": most, "buy_at": BUY_AT,
              "sell_at": -BUY_AT, "reasons": reasons, "skipped": skipped}
    return verdicts, signal
