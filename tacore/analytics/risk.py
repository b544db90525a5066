"""Portfolio risk from stored candles: what ``evaluate.risk`` answers.

One store query reads every position's (and the benchmark's) candles in the lookback window. Positions
with too little history are named and left out of the statistics, which then cover the rest of the book
(``total.covered_weight`` says how much of it); ``tacore.analytics.risk_book`` computes those on one time
grid at today's weights. Fractions are of the covered gross exposure; money figures multiply them by it.

Market values are floats: stored prices are floats and these are risk estimates, not accounting (the
ledger keeps Decimal money). A book across markets adds USD and USDT one to one, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from tacore.analytics import risk_measures as rm
from tacore.analytics.candles import CandleReader, CloseSeries, load_closes
from tacore.analytics.risk_book import BookFigures, CoveredPosition, benchmark_beta, book_figures, f
from tacore.markets import Market, MarketRegistry

DAY_MS = 86_400_000
ALIGNMENT_RULE = ("grid: close times shared by every series of the market with the fewest bars per year; "
                  "other markets sampled as of each grid time (last close at or before it, fresh since the "
                  "previous grid time)")
STATISTICS = ("volatility", "returns", "var", "drawdown", "sharpe", "sortino", "risk_free_rate", "correlation")


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

    @property
    def needed(self) -> int:
        """Closed candles a series needs: ``min_candles`` returns."""
        return self.min_candles + 1


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


def _shortfall(reason: str, symbol: str, candles: int, needed: int, role: str = "position") -> dict[str, Any]:
    return {"symbol": symbol, "role": role, "candles": candles, "needed": needed, "reason": reason}


def _value(positions: list[_Position], request: RiskRequest) -> float | None:
    """Fill each position's value and weight (of the gross exposure); the gross exposure in money, or None
    when there is none to give (nothing priced, or weights without a notional)."""
    if request.by_quantity:
        for p in positions:
            if p.series is not None and p.holding.quantity is not None:
                p.value = float(p.holding.quantity) * p.series.last_price
        priced = [p for p in positions if p.value is not None]
        gross = sum(abs(p.value or 0.0) for p in priced)
        for p in priced:
            p.weight = (p.value or 0.0) / gross if gross else None
        return gross if priced else None
    total = sum(abs(p.holding.weight or 0.0) for p in positions)
    notional = float(request.notional) if request.notional is not None else None
    for p in positions:
        p.weight = (p.holding.weight or 0.0) / total
        p.value = p.weight * notional if notional is not None else None
    return notional


def evaluate_risk(reader: CandleReader, markets: MarketRegistry, request: RiskRequest) -> dict[str, Any]:
    """The ``evaluate.risk`` reply for ``request`` (see docs/analytics.md for every field)."""
    interval, needed = request.interval, request.needed
    start_ms = request.end_ms - int(request.lookback_days * DAY_MS)
    market_of = {h.symbol: markets.require_market_of(h.symbol, field=f"portfolio.{h.symbol}")
                 for h in request.holdings}
    anchor = min(market_of.values(), key=lambda m: m.bars_per_year(interval))
    benchmark = request.benchmark or request.default_benchmarks.get(anchor.name)
    wanted = list(dict.fromkeys([*market_of, *([benchmark] if benchmark else [])]))
    loaded = load_closes(reader, wanted, interval, start_ms, request.end_ms)

    positions = [_Position(h, market_of[h.symbol], _clean(loaded.get(h.symbol))) for h in request.holdings]
    shortfalls: list[dict[str, Any]] = []
    for p in positions:
        if p.series is None:
            p.status = "no_data"
            shortfalls.append(_shortfall(f"no {interval} candles stored in the lookback window", p.symbol, 0,
                                         needed))
        elif p.series.count < needed:
            p.status = "insufficient_history"
            shortfalls.append(_shortfall(f"{p.series.count} closed {interval} candles in the lookback window, "
                                         f"{needed} needed", p.symbol, p.series.count, needed))
    gross = _value(positions, request)
    covered = [p for p in positions if p.status == "ok"]
    covered_weight = sum(abs(p.weight or 0.0) for p in covered)
    money_base = gross * covered_weight if gross is not None else None
    priced = [p for p in positions if p.value is not None]

    book = book_figures([CoveredPosition(p.symbol, p.market.name, p.series.close_time, p.series.close,
                                         p.market.bars_per_year(interval), p.weight or 0.0)
                         for p in covered if p.series is not None],
                        horizon=request.horizon, confidence_levels=request.confidence_levels,
                        risk_free_rate=request.risk_free_rate) if covered else None
    reply: dict[str, Any] = {
        "status": "partial" if shortfalls else "ok", "as_of": request.end_ms, "interval": interval,
        "horizon_bars": request.horizon, "weighting": "quantity" if request.by_quantity else "weight",
        "currency": "/".join(dict.fromkeys(p.market.quote_currency for p in positions)),
        "positions": [], "insufficient_history": shortfalls,
        "total": {"market_value": f(sum(p.value or 0.0 for p in priced), 6) if priced else None,
                  "gross_exposure": f(gross, 6), "positions": len(positions), "covered_positions": len(covered),
                  "covered_weight": f(covered_weight, 6)},
        "lookback": _lookback(request, start_ms, book),
        "concentration": _concentration([p for p in positions if p.weight]),
        "notes": ["market values are floats from stored float prices (risk estimates, not accounting)"],
    }
    if len({p.market.quote_currency for p in positions}) > 1:
        reply["notes"].append("the book spans quote currencies; they are added one to one")
    if book is None or book.grid.size < needed:
        reply.update(status="insufficient_history", beta=None, **dict.fromkeys(STATISTICS))
        reply["message"] = ("no position has enough history for risk figures: see insufficient_history"
                            if book is None else
                            f"the positions share {book.grid.size} {interval} candles on a common grid, {needed} "
                            "needed (see lookback.alignment)")
        reply["positions"] = [_position_view(p, {}) for p in positions]
        return reply
    reply.update(book.figures)
    for entry in reply["var"]:
        for method in ("historical", "parametric", "cornish_fisher"):
            entry[method]["var_value"] = _money(entry[method]["var"], money_base)
            entry[method]["cvar_value"] = _money(entry[method]["cvar"], money_base)
    reply["drawdown"]["max_value"] = _money(reply["drawdown"]["max"], money_base)
    reply["beta"], betas = _beta(book, [p.symbol for p in covered], benchmark, loaded, markets, request,
                                 shortfalls)
    for symbol, beta in betas.items():
        book.per_position[symbol]["beta"] = beta
    reply["positions"] = [_position_view(p, book.per_position) for p in positions]
    return reply


def _beta(book: BookFigures, symbols: list[str], benchmark: str | None, loaded: dict[str, CloseSeries],
          markets: MarketRegistry, request: RiskRequest,
          shortfalls: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, float | None]]:
    if benchmark is None:
        return {"benchmark": None, "value": None, "message": "no benchmark named and none configured for the "
                "book's market (trading_config.yaml risk.benchmarks)"}, {}
    series = _clean(loaded.get(benchmark))
    market = markets.market_of(benchmark)
    count = series.count if series is not None else 0
    if series is None or market is None or count < request.needed:
        reason = (f"{count} closed {request.interval} candles of the benchmark in the lookback window, "
                  f"{request.needed} needed") if market is not None else "the benchmark belongs to no market"
        shortfalls.append(_shortfall(reason, benchmark, count, request.needed, role="benchmark"))
        return {"benchmark": benchmark, "value": None, "message": reason}, {}
    beta, betas = benchmark_beta(book, symbols, benchmark, series.close_time, series.close,
                                 market.bars_per_year(request.interval), request.needed)
    if beta["value"] is None:
        shortfalls.append(_shortfall(beta["message"], benchmark, count, request.needed, role="benchmark"))
    return beta, betas


def _money(fraction: float | None, base: float | None) -> float | None:
    return None if fraction is None or base is None else f(fraction * base, 6)


def _lookback(request: RiskRequest, start_ms: int, book: BookFigures | None) -> dict[str, Any]:
    grid = book.grid if book is not None else np.empty(0, dtype=np.int64)
    return {
        "days": request.lookback_days, "start": start_ms, "end": request.end_ms, "interval": request.interval,
        "candles_used": int(grid.size), "returns_used": max(0, int(grid.size) - 1),
        "first_candle": int(grid[0]) if grid.size else None, "last_candle": int(grid[-1]) if grid.size else None,
        "bars_per_year": f(book.bars_per_year, 4) if book is not None else None,
        "anchor_market": book.anchor_market if book is not None else None, "alignment": ALIGNMENT_RULE,
    }


def _position_view(p: _Position, per_position: dict[str, dict[str, Any]]) -> dict[str, Any]:
    extra = per_position.get(p.symbol, {}) if p.status == "ok" else {}
    series = p.series
    return {
        "symbol": p.symbol, "market": p.market.name, "currency": p.market.quote_currency,
        "quantity": str(p.holding.quantity) if p.holding.quantity is not None else None,
        "price": series.last_price if series is not None else None,
        "price_time": series.last_price_time if series is not None else None,
        "market_value": f(p.value, 6), "weight": f(p.weight, 8), "status": p.status,
        "candles": series.count if series is not None else 0,
        "first_candle": int(series.close_time[0]) if series is not None and series.count else None,
        "last_candle": int(series.close_time[-1]) if series is not None and series.count else None,
        "volatility": extra.get("volatility"), "volatility_contribution": extra.get("volatility_contribution"),
        "beta": extra.get("beta"),
    }


def _concentration(weighted: list[_Position]) -> dict[str, Any] | None:
    """Of the whole book (history or not): HHI of gross weights, its inverse (effective positions), the
    largest weight, the top five's share."""
    if not weighted:
        return None
    weights = np.array([p.weight or 0.0 for p in weighted])
    shares = np.abs(weights) / float(np.sum(np.abs(weights)))
    order = np.argsort(-shares)
    hhi = rm.herfindahl(weights)
    top = int(order[0])
    return {"hhi": f(hhi, 8), "effective_positions": f(1.0 / hhi, 6),
            "largest": {"symbol": weighted[top].symbol, "weight": f(float(shares[top]), 8)},
            "top5_weight": f(float(np.sum(shares[order[:5]])), 8)}
