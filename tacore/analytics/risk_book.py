"""The statistics of a book whose positions all have history: on one grid, at fixed weights.

``book_figures`` aligns the positions (``tacore.analytics.alignment``), holds them at the given weights
(normalised to a gross of 1, rebalanced each bar), and measures the book's returns with
``tacore.analytics.risk_measures``; ``benchmark_beta`` measures it against a benchmark on the grid both share.
Fractions only: the caller turns them into money.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tacore.analytics import risk_measures as rm
from tacore.analytics.alignment import PriceSeries, align, simple_returns

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class CoveredPosition:
    """A covered position as the statistics see it."""

    symbol: str
    market: str
    close_time: I64
    close: F64
    bars_per_year: float
    weight: float


@dataclass
class BookFigures:
    grid: I64
    bars_per_year: float
    anchor_market: str
    weights: F64  # normalised to a gross of 1, in the order of the positions
    prices: F64  # (grid points, positions)
    figures: dict[str, Any] = field(default_factory=dict)  # volatility ... correlation, as in the reply
    per_position: dict[str, dict[str, Any]] = field(default_factory=dict)


def f(value: float | None, digits: int = 10) -> float | None:
    """JSON-safe float: None for NaN/inf, rounded so replies stay readable."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def matrix(values: F64, digits: int) -> list[list[float | None]]:
    """A float matrix as JSON rows, rounded, NaN as null (vectorised: a 50 x 50 matrix is 2,500 cells)."""
    rounded = np.round(values, digits)
    if bool(np.isfinite(rounded).all()):
        rows: list[list[float | None]] = rounded.tolist()
        return rows
    return [[float(x) if math.isfinite(x) else None for x in row] for row in rounded.tolist()]


def book_figures(positions: Sequence[CoveredPosition], *, horizon: int, confidence_levels: Sequence[float],
                 risk_free_rate: float) -> BookFigures:
    """Volatility, return moments, VaR/CVaR, drawdown, Sharpe, Sortino and correlations of the book.
    ``figures`` stays empty when the grid has fewer than two points (the caller checks ``grid.size``)."""
    aligned = align([PriceSeries(p.close_time, p.close, p.bars_per_year) for p in positions])
    anchor = min(positions, key=lambda p: p.bars_per_year).market
    weights = np.array([p.weight for p in positions])
    weights = weights / float(np.sum(np.abs(weights)))
    book = BookFigures(aligned.times, aligned.bars_per_year, anchor, weights, aligned.values)
    if aligned.times.size < 3:
        return book
    returns = simple_returns(aligned.values)
    book_returns = returns @ weights
    bpy = aligned.bars_per_year
    rf_bar = (1.0 + risk_free_rate) ** (1.0 / bpy) - 1.0
    m = rm.moments(book_returns)
    covariance = np.atleast_2d(np.cov(returns, rowvar=False, ddof=1))
    per_vol = np.sqrt(np.diag(covariance) * bpy)
    contributions = rm.volatility_contributions(weights, covariance)
    book.per_position = {p.symbol: {"volatility": f(float(v)), "volatility_contribution": f(float(c), 6)}
                         for p, v, c in zip(positions, per_vol, contributions, strict=True)}
    book.figures = {
        "volatility": {"annualised": f(m.std * math.sqrt(bpy)), "per_bar": f(m.std)},
        "returns": {"mean_per_bar": f(m.mean), "annualised_mean": f(m.mean * bpy),
                    "total": f(float(np.prod(1.0 + book_returns) - 1.0)), "skew": f(m.skew),
                    "excess_kurtosis": f(m.excess_kurtosis), "count": m.count},
        "var": _var_rows(book_returns, m, horizon, confidence_levels),
        "drawdown": _drawdown(book_returns, aligned.times),
        "sharpe": f(rm.sharpe_ratio(book_returns, bpy, rf_bar)),
        "sortino": f(rm.sortino_ratio(book_returns, bpy, rf_bar)),
        "risk_free_rate": risk_free_rate,
        "correlation": {"symbols": [p.symbol for p in positions],
                        "matrix": matrix(rm.correlation_from_covariance(covariance), 6)},
    }
    return book


def _var_rows(returns: F64, m: rm.Moments, horizon: int, levels: Sequence[float]) -> list[dict[str, Any]]:
    h = horizon
    sample = rm.horizon_returns(returns, h)
    mean, std = m.mean * h, m.std * math.sqrt(h)
    rows = []
    for c in levels:
        hist = rm.historical_var(sample, c)
        param = rm.parametric_var(mean, std, c)
        cf = rm.cornish_fisher_var(mean, std, m.skew / math.sqrt(h), m.excess_kurtosis / h, c)
        rows.append({
            "confidence": c, "horizon_bars": h, "samples": int(sample.size),
            "historical": {"var": f(hist.var), "cvar": f(hist.cvar)},
            "parametric": {"var": f(param.var), "cvar": f(param.cvar)},
            "cornish_fisher": {"var": f(cf.var), "cvar": f(cf.cvar)},
        })
    return rows


def _drawdown(returns: F64, times: I64) -> dict[str, Any]:
    dd = rm.max_drawdown(returns)
    end = dd.recovery if dd.recovery is not None else times.size - 1
    return {"max": f(dd.max), "peak_time": int(times[dd.peak]), "trough_time": int(times[dd.trough]),
            "recovery_time": int(times[dd.recovery]) if dd.recovery is not None else None,
            "recovered": dd.recovery is not None, "duration_bars": end - dd.peak,
            "duration_days": f((int(times[end]) - int(times[dd.peak])) / DAY_MS, 4),
            "peak_to_trough_bars": dd.trough - dd.peak}


def benchmark_beta(book: BookFigures, symbols: Sequence[str], benchmark: str, close_time: I64, close: F64,
                   bars_per_year: float, needed: int) -> tuple[dict[str, Any], dict[str, float | None]]:
    """(the reply's ``beta``, each position's beta) against the benchmark on the grid both share; ``value``
    null with a ``message`` when they share fewer than ``needed`` points."""
    both = align([PriceSeries(book.grid, book.prices, book.bars_per_year),
                  PriceSeries(close_time, close, bars_per_year)])
    if both.times.size < needed:
        return ({"benchmark": benchmark, "value": None,
                 "message": f"the book and the benchmark share {both.times.size} candles on a common grid, "
                            f"{needed} needed"}, {})
    returns = simple_returns(both.values)
    bench = returns[:, -1]
    positions = returns[:, :-1]
    book_returns = positions @ book.weights
    correlation = float(np.corrcoef(book_returns, bench)[0, 1]) if np.std(book_returns) and np.std(bench) else None
    per_position = {s: f(float(b)) for s, b in zip(symbols, rm.betas(positions, bench), strict=True)}
    return ({"benchmark": benchmark, "value": f(rm.beta(book_returns, bench)), "correlation": f(correlation),
             "returns_used": int(bench.size),
             "benchmark_volatility": f(float(np.std(bench, ddof=1) * math.sqrt(both.bars_per_year)))},
            per_position)
