"""Portfolio risk from stored candles: what ``evaluate.risk`` answers.

One store query reads every position's (and the benchmark's) candles in the lookback window; positions
with too little history are named and left out of the statistics, which then cover the rest of the book
(``total.covered_weight`` says how much of it). The covered positions are put on one time grid
(``tacore.analytics.alignment``), held at today's weights (rebalanced each bar: the usual assumption of
a risk snapshot), and measured with ``tacore.analytics.risk_measures``. Fractions are of the covered
gross exposure; money figures multiply them by it.

Market values are floats: stored prices are floats and these are risk estimates, not accounting (the
ledger keeps Decimal money). A book across markets adds USD and USDT one to one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from tacore.analytics import risk_measures as rm
from tacore.analytics.alignment import PriceSeries, align, simple_returns
from tacore.analytics.candles import CandleReader, CloseSeries, load_closes
from tacore.intervals import INTERVAL_MS
from tacore.markets import Market, MarketRegistry

F64 = npt.NDArray[np.float64]
DAY_MS = 86_400_000
ALIGNMENT_RULE = ("grid: close times shared by every series of the market with the fewest bars per year; "
                  "other markets sampled as of each grid time (last close at or before it, fresh since the "
                  "previous grid time)")


@dataclass(frozen=True, slots=True)
class Holding:
    symbol: str
    quantity: Decimal | None = None  # quantity mode
    weight: float | None = None  # weight mode


@dataclass(frozen=True, slots=True)
class RiskRequest:
    holdings: Sequence[Holding]
    end_ms: int
    notional: Decimal | None = None  # weight mode: the book's value, for money figures
    benchmark: str | None = None  # None: the anchor market's default from ``default_benchmarks``
    interval: str = "1d"
    lookback_days: float = 365.0
    horizon: int = 1
    confidence_levels: Sequence[float] = (0.95, 0.99)
    min_candles: int = 30
    risk_free_rate: float = 0.0  # annual
    default_benchmarks: dict[str, str] = field(default_factory=dict)

    @property
    def by_quantity(self) -> bool:
        return self.holdings[0].quantity is not None


@dataclass(slots=True)
class _Position:
    holding: Holding
    market: Market
    series: CloseSeries | None
    status: str = "ok"
    value: float | None = None
    weight: float | None = None

    @property
    def symbol(self) -> str:
        return self.holding.symbol


def _clean(series: CloseSeries | None) -> CloseSeries | None:
    """Drop candles whose close cannot be a price (non-finite or not positive)."""
    if series is None:
        return None
    good = np.isfinite(series.close) & (series.close > 0)
    if bool(good.all()):
        return series
    return CloseSeries(series.symbol, series.close_time[good], series.close[good], series.last_price,
                       series.last_price_time)


def _f(value: float | None, digits: int = 10) -> float | None:
    """JSON-safe float: None for NaN/inf, rounded so replies stay readable."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _matrix(values: F64, digits: int) -> list[list[float | None]]:
    """A float matrix as JSON rows, rounded, NaN as null (vectorised: a 50 x 50 matrix is 2,500 cells)."""
    rounded = np.round(values, digits)
    if bool(np.isfinite(rounded).all()):
        rows: list[list[float | None]] = rounded.tolist()
        return rows
    return [[float(x) if math.isfinite(x) else None for x in row] for row in rounded.tolist()]


def _shortfall(reason: str, symbol: str, candles: int, needed: int, role: str = "position") -> dict[str, Any]:
    return {"symbol": symbol, "role": role, "candles": candles, "needed": needed, "reason": reason}


def _value_positions(positions: list[_Position], request: RiskRequest) -> float | None:
    """Fill value and weight of each position; returns the book's gross exposure in money (None in weight
    mode without a notional)."""
    if request.by_quantity:
        for p in positions:
            if p.series is not None and p.holding.quantity is not None:
                p.value = float(p.holding.quantity) * p.series.last_price
        if all(p.value is None for p in positions):
            return None  # nothing priced: no money figures at all
        gross = sum(abs(p.value) for p in positions if p.value is not None)
        for p in positions:
            if p.value is not None and gross:
                p.weight = p.value / gross
        return gross
    total = sum(abs(p.holding.weight or 0.0) for p in positions)
    notional = float(request.notional) if request.notional is not None else None
    for p in positions:
        p.weight = (p.holding.weight or 0.0) / total
        if notional is not None:
            p.value = p.weight * notional
    return notional


def evaluate_risk(reader: CandleReader, markets: MarketRegistry, request: RiskRequest) -> dict[str, Any]:
    """The ``evaluate.risk`` reply for ``request`` (see docs/analytics.md for every field)."""
    step = INTERVAL_MS[request.interval]
    start_ms = request.end_ms - int(request.lookback_days * DAY_MS)
    market_of = {h.symbol: markets.require_market_of(h.symbol, field=f"portfolio.{h.symbol}")
                 for h in request.holdings}
    anchor_hint = min(market_of.values(), key=lambda m: m.bars_per_year(request.interval))
    benchmark = request.benchmark or request.default_benchmarks.get(anchor_hint.name)
    wanted = list(dict.fromkeys([*market_of, *([benchmark] if benchmark else [])]))
    loaded = load_closes(reader, wanted, request.interval, start_ms, request.end_ms)

    positions = [_Position(h, market_of[h.symbol], _clean(loaded.get(h.symbol))) for h in request.holdings]
    needed = request.min_candles + 1
    shortfalls: list[dict[str, Any]] = []
    for p in positions:
        if p.series is None:
            p.status = "no_data"
            shortfalls.append(_shortfall(f"no {request.interval} candles stored in the lookback window",
                                         p.symbol, 0, needed))
        elif p.series.count < needed:
            p.status = "insufficient_history"
            shortfalls.append(_shortfall(f"{p.series.count} closed {request.interval} candles in the lookback "
                                         f"window, {needed} needed", p.symbol, p.series.count, needed))
    gross = _value_positions(positions, request)
    covered = [p for p in positions if p.status == "ok"]
    reply: dict[str, Any] = {
        "status": "ok", "as_of": request.end_ms, "interval": request.interval, "horizon_bars": request.horizon,
        "weighting": "quantity" if request.by_quantity else "weight",
        "currency": _currency(positions),
        "insufficient_history": shortfalls,
        "notes": ["market values are floats from stored float prices (risk estimates, not accounting)"],
        "concentration": _concentration([p for p in positions if p.weight]),
    }
    if len({p.market.quote_currency for p in positions}) > 1:
        reply["notes"].append("the book spans quote currencies; they are added one to one")
    covered_gross = sum(abs(p.weight or 0.0) for p in covered)
    figures = _figures(covered, request, start_ms, step, benchmark, loaded, markets, shortfalls)
    money_base = gross * covered_gross if gross is not None else None
    reply["positions"] = [_position_view(p, figures) for p in positions]
    reply["total"] = {
        "market_value": _f(sum(p.value for p in positions if p.value is not None), 6)
        if any(p.value is not None for p in positions) else None,
        "gross_exposure": _f(gross, 6), "positions": len(positions), "covered_positions": len(covered),
        "covered_weight": _f(covered_gross, 6),
    }
    if figures is None or figures.get("status") == "insufficient_history":
        reply["status"] = "insufficient_history"
        reply["lookback"] = (figures or {}).get("lookback") or _lookback(request, start_ms, None, None)
        for key in ("volatility", "returns", "var", "drawdown", "sharpe", "sortino", "beta", "correlation"):
            reply[key] = None
        reply["message"] = (figures or {}).get("message") or \
            "no position has enough history for risk figures: see insufficient_history"
        return reply
    if shortfalls:
        reply["status"] = "partial"
    reply.update({k: v for k, v in figures.items() if not k.startswith("_")})
    for entry in reply["var"]:
        for method in ("historical", "parametric", "cornish_fisher"):
            estimate = entry[method]
            estimate["var_value"] = _money(estimate["var"], money_base)
            estimate["cvar_value"] = _money(estimate["cvar"], money_base)
    reply["drawdown"]["max_value"] = _money(reply["drawdown"]["max"], money_base)
    return reply


def _money(fraction: float | None, base: float | None) -> float | None:
    return None if fraction is None or base is None else _f(fraction * base, 6)


def _currency(positions: Sequence[_Position]) -> str:
    currencies = list(dict.fromkeys(p.market.quote_currency for p in positions))
    return currencies[0] if len(currencies) == 1 else "/".join(currencies)


def _lookback(request: RiskRequest, start_ms: int, grid: npt.NDArray[np.int64] | None,
              bars_per_year: float | None, anchor: str | None = None) -> dict[str, Any]:
    return {
        "days": request.lookback_days, "start": start_ms, "end": request.end_ms, "interval": request.interval,
        "candles_used": int(grid.size) if grid is not None else 0,
        "returns_used": max(0, int(grid.size) - 1) if grid is not None else 0,
        "first_candle": int(grid[0]) if grid is not None and grid.size else None,
        "last_candle": int(grid[-1]) if grid is not None and grid.size else None,
        "bars_per_year": _f(bars_per_year, 4), "anchor_market": anchor, "alignment": ALIGNMENT_RULE,
    }


def _figures(covered: list[_Position], request: RiskRequest, start_ms: int, step: int, benchmark: str | None,
             loaded: dict[str, CloseSeries], markets: MarketRegistry,
             shortfalls: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Every statistic of the covered book; None when nothing is covered."""
    if not covered:
        return None
    interval = request.interval
    book = [PriceSeries(p.series.close_time, p.series.close, p.market.bars_per_year(interval))
            for p in covered if p.series is not None]
    aligned = align(book)
    anchor = min((p.market for p in covered), key=lambda m: m.bars_per_year(interval)).name
    needed = request.min_candles + 1
    lookback = _lookback(request, start_ms, aligned.times, aligned.bars_per_year, anchor)
    if aligned.times.size < needed:
        return {"status": "insufficient_history", "lookback": lookback,
                "message": f"the positions share {aligned.times.size} {interval} candles on a common grid, "
                           f"{needed} needed (see lookback.alignment)"}
    weights = np.array([p.weight or 0.0 for p in covered])
    weights = weights / float(np.sum(np.abs(weights)))
    returns = simple_returns(aligned.values)
    book_returns = returns @ weights
    bpy = aligned.bars_per_year
    rf_bar = (1.0 + request.risk_free_rate) ** (1.0 / bpy) - 1.0
    m = rm.moments(book_returns)
    covariance = np.atleast_2d(np.cov(returns, rowvar=False, ddof=1))
    per_vol = np.sqrt(np.diag(covariance) * bpy)
    contributions = rm.volatility_contributions(weights, covariance)
    dd = rm.max_drawdown(book_returns)
    times = aligned.times
    last = times.size - 1
    end_index = dd.recovery if dd.recovery is not None else last
    horizon_sample = rm.horizon_returns(book_returns, request.horizon)
    var_rows = []
    for c in request.confidence_levels:
        h = request.horizon
        hist = rm.historical_var(horizon_sample, c)
        param = rm.parametric_var(m.mean * h, m.std * math.sqrt(h), c)
        cf = rm.cornish_fisher_var(m.mean * h, m.std * math.sqrt(h), m.skew / math.sqrt(h), m.excess_kurtosis / h, c)
        var_rows.append({
            "confidence": c, "horizon_bars": h, "samples": int(horizon_sample.size),
            "historical": {"var": _f(hist.var), "cvar": _f(hist.cvar)},
            "parametric": {"var": _f(param.var), "cvar": _f(param.cvar)},
            "cornish_fisher": {"var": _f(cf.var), "cvar": _f(cf.cvar)},
        })
    figures: dict[str, Any] = {
        "lookback": lookback,
        "volatility": {"annualised": _f(m.std * math.sqrt(bpy)), "per_bar": _f(m.std)},
        "returns": {"mean_per_bar": _f(m.mean), "annualised_mean": _f(m.mean * bpy),
                    "total": _f(float(np.prod(1.0 + book_returns) - 1.0)), "skew": _f(m.skew),
                    "excess_kurtosis": _f(m.excess_kurtosis), "count": m.count},
        "var": var_rows,
        "drawdown": {"max": _f(dd.max), "peak_time": int(times[dd.peak]), "trough_time": int(times[dd.trough]),
                     "recovery_time": int(times[dd.recovery]) if dd.recovery is not None else None,
                     "recovered": dd.recovery is not None, "duration_bars": end_index - dd.peak,
                     "duration_days": _f((int(times[end_index]) - int(times[dd.peak])) / DAY_MS, 4),
                     "peak_to_trough_bars": dd.trough - dd.peak},
        "sharpe": _f(rm.sharpe_ratio(book_returns, bpy, rf_bar)),
        "sortino": _f(rm.sortino_ratio(book_returns, bpy, rf_bar)),
        "risk_free_rate": request.risk_free_rate,
        "correlation": {"symbols": [p.symbol for p in covered],
                        "matrix": _matrix(rm.correlation_from_covariance(covariance), 6)},
        "_per_position": {p.symbol: {"volatility": _f(float(v)), "volatility_contribution": _f(float(cn), 6)}
                          for p, v, cn in zip(covered, per_vol, contributions, strict=True)},
    }
    figures["beta"] = _beta(benchmark, aligned.times, aligned.values, bpy, weights, covered, loaded, markets,
                            request, shortfalls, figures["_per_position"])
    return figures


def _beta(benchmark: str | None, grid: npt.NDArray[np.int64], prices: F64, bpy: float, weights: F64,
          covered: list[_Position], loaded: dict[str, CloseSeries], markets: MarketRegistry,
          request: RiskRequest, shortfalls: list[dict[str, Any]],
          per_position: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Beta of the book (and of each position) to the benchmark, on the grid shared by both."""
    if benchmark is None:
        return {"benchmark": None, "value": None, "message": "no benchmark named and none configured for the "
                "book's market (trading_config.yaml risk.benchmarks)"}
    needed = request.min_candles + 1
    bench = _clean(loaded.get(benchmark))
    market = markets.market_of(benchmark)
    count = bench.count if bench is not None else 0
    if bench is None or market is None or count < needed:
        reason = (f"{count} closed {request.interval} candles of the benchmark in the lookback window, {needed} "
                  "needed") if market is not None else "the benchmark belongs to no market"
        shortfalls.append(_shortfall(reason, benchmark, count, needed, role="benchmark"))
        return {"benchmark": benchmark, "value": None, "message": reason}
    both = align([PriceSeries(grid, prices, bpy),
                  PriceSeries(bench.close_time, bench.close, market.bars_per_year(request.interval))])
    if both.times.size < needed:
        message = f"the book and the benchmark share {both.times.size} candles on a common grid, {needed} needed"
        shortfalls.append(_shortfall(message, benchmark, int(both.times.size), needed, role="benchmark"))
        return {"benchmark": benchmark, "value": None, "message": message}
    returns = simple_returns(both.values)
    bench_returns = returns[:, -1]
    book_returns = returns[:, :-1] @ weights
    for p, value in zip(covered, rm.betas(returns[:, :-1], bench_returns), strict=True):
        per_position[p.symbol]["beta"] = _f(float(value))
    correlation = float(np.corrcoef(book_returns, bench_returns)[0, 1]) if np.std(book_returns) and \
        np.std(bench_returns) else None
    return {"benchmark": benchmark, "value": _f(rm.beta(book_returns, bench_returns)),
            "correlation": _f(correlation), "returns_used": int(bench_returns.size),
            "benchmark_volatility": _f(float(np.std(bench_returns, ddof=1) * math.sqrt(both.bars_per_year)))}


def _position_view(p: _Position, figures: dict[str, Any] | None) -> dict[str, Any]:
    extra = (figures or {}).get("_per_position", {}).get(p.symbol, {}) if p.status == "ok" else {}
    series = p.series
    return {
        "symbol": p.symbol, "market": p.market.name, "currency": p.market.quote_currency,
        "quantity": str(p.holding.quantity) if p.holding.quantity is not None else None,
        "price": series.last_price if series is not None else None,
        "price_time": series.last_price_time if series is not None else None,
        "market_value": _f(p.value, 6), "weight": _f(p.weight, 8), "status": p.status,
        "candles": series.count if series is not None else 0,
        "first_candle": int(series.close_time[0]) if series is not None and series.count else None,
        "last_candle": int(series.close_time[-1]) if series is not None and series.count else None,
        "volatility": extra.get("volatility"), "volatility_contribution": extra.get("volatility_contribution"),
        "beta": extra.get("beta"),
    }


def _concentration(weighted: list[_Position]) -> dict[str, Any] | None:
    """Of the whole book (history or not): HHI of gross weights, its inverse (effective positions), the
    largest weight, the top 5's share."""
    if not weighted:
        return None
    covered = weighted
    weights = np.array([p.weight or 0.0 for p in covered])
    shares = np.abs(weights) / float(np.sum(np.abs(weights)))
    order = np.argsort(-shares)
    hhi = rm.herfindahl(weights)
    top = int(order[0])
    return {"hhi": _f(hhi, 8), "effective_positions": _f(1.0 / hhi, 6),
            "largest": {"symbol": covered[top].symbol, "weight": _f(float(shares[top]), 8)},
            "top5_weight": _f(float(np.sum(shares[order[:5]])), 8)}
