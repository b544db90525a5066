"""evaluate.risk: portfolio risk from stored candles (served by the data agent, which owns the store).

The handler validates the book and the options, then ``tacore.analytics.risk`` does the work in one store
query. The design document's payload ``{"portfolio": {"AAPL": 100, "GOOGL": 50}}`` holds quantities;
``weights`` (with an optional ``notional``) describe a book by weight instead.
"""

from __future__ import annotations

import math
import time
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from threadpoolctl import threadpool_limits

from tacore.analytics.candles import CandleReader
from tacore.analytics.risk import Holding, RiskRequest, evaluate_risk
from tacore.errors import Unavailable
from tacore.intervals import INTERVAL_MS
from tacore.markets import MarketRegistry, load_markets
from tacore.markets.registry import read_trading_config
from tacore.settings import Settings
from tacore.store.klines import StorageError
from workers.methods.klines import check_interval
from workers.methods.symbols import check_symbol
from workers.registry import MethodRegistry

MAX_POSITIONS = 500
#: largest quantity, weight or notional taken (beyond it floats lose the cents the figures are read in)
MAX_AMOUNT = 10 ** 15
#: candles per symbol one request may read (lookback_days / interval)
MAX_BARS = 100_000
DAY_MS = 86_400_000
#: default lookback: a year, or 1,000 candles of an intraday interval if that is shorter
DEFAULT_LOOKBACK_DAYS = 365.0
DEFAULT_LOOKBACK_BARS = 1000


def _symbol_keys(value: Any) -> Any:
    """Upper-case the book's symbols, naming every bad or repeated one."""
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    problems = []
    for key, amount in value.items():
        try:
            symbol = check_symbol(key)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if symbol in out:
            problems.append(f"{key!r} repeats {symbol}")
        out[symbol] = amount
    if problems:
        raise ValueError("; ".join(problems))
    return out


class RiskParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    portfolio: dict[str, Decimal] | None = Field(None, description="symbol -> quantity (negative: short)")
    weights: dict[str, float] | None = Field(None, description="symbol -> weight, normalised to gross 1")
    notional: Decimal | None = Field(None, gt=0, le=MAX_AMOUNT, description="weight mode: the book's value")
    benchmark: str | None = None
    interval: str = "1d"
    lookback_days: float | None = Field(None, gt=0, le=3660)
    horizon: int = Field(1, ge=1, le=250, description="VaR horizon in bars of the interval")
    confidence_levels: list[float] = Field(default_factory=lambda: [0.95, 0.99], min_length=1, max_length=5)
    min_candles: int = Field(30, ge=5, le=10_000, description="closed candles a position needs (plus one)")
    risk_free_rate: float = Field(0.0, ge=-0.5, le=1.0, description="annual")
    end: int | None = Field(None, ge=0, description="as-of time, epoch ms (default: now)")

    _keys = field_validator("portfolio", "weights", mode="before")(_symbol_keys)
    _interval = field_validator("interval", mode="before")(check_interval)

    @field_validator("benchmark", mode="before")
    @classmethod
    def _benchmark(cls, value: Any) -> Any:
        return None if value is None else check_symbol(value)

    @field_validator("portfolio")
    @classmethod
    def _quantities(cls, value: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
        if value is not None:
            bad = [s for s, q in value.items() if not q.is_finite() or q == 0 or abs(q) > MAX_AMOUNT]
            if bad:
                raise ValueError(f"quantities must be finite, non-zero and at most {MAX_AMOUNT:.0e} in size: "
                                 f"{', '.join(bad)}")
        return value

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None:
            bad = [s for s, w in value.items() if not math.isfinite(w) or w == 0 or abs(w) > MAX_AMOUNT]
            if bad:
                raise ValueError(f"weights must be finite, non-zero and at most {MAX_AMOUNT:.0e} in size: "
                                 f"{', '.join(bad)}")
        return value

    @field_validator("confidence_levels")
    @classmethod
    def _levels(cls, value: list[float]) -> list[float]:
        bad = [c for c in value if not 0.5 <= c < 1.0]
        if bad:
            raise ValueError(f"confidence levels must be in [0.5, 1): {bad}")
        return sorted(set(value))

    @model_validator(mode="after")
    def _one_book(self) -> RiskParams:
        books = [b for b in (self.portfolio, self.weights) if b is not None]
        if len(books) != 1:
            raise ValueError("give either portfolio (quantities) or weights, not both" if books else
                             "give portfolio (symbol -> quantity) or weights (symbol -> weight)")
        if not books[0]:
            raise ValueError("the book is empty")
        if len(books[0]) > MAX_POSITIONS:
            raise ValueError(f"at most {MAX_POSITIONS} positions")
        if self.notional is not None and self.weights is None:
            raise ValueError("notional goes with weights (a portfolio of quantities has its own value)")
        if self.lookback_days is not None and self.lookback_days * DAY_MS / INTERVAL_MS[self.interval] > MAX_BARS:
            raise ValueError(f"lookback_days covers more than {MAX_BARS} {self.interval} candles")
        return self

    def lookback(self) -> float:
        if self.lookback_days is not None:
            return self.lookback_days
        return min(DEFAULT_LOOKBACK_DAYS, DEFAULT_LOOKBACK_BARS * INTERVAL_MS[self.interval] / DAY_MS)

    def to_request(self, default_benchmarks: dict[str, str]) -> RiskRequest:
        if self.portfolio is not None:
            holdings = [Holding(s, quantity=q) for s, q in self.portfolio.items()]
        else:
            holdings = [Holding(s, weight=w) for s, w in (self.weights or {}).items()]
        return RiskRequest(
            holdings=holdings, end_ms=self.end if self.end is not None else int(time.time() * 1000),
            notional=self.notional, benchmark=self.benchmark, interval=self.interval,
            lookback_days=self.lookback(), horizon=self.horizon, confidence_levels=tuple(self.confidence_levels),
            min_candles=self.min_candles, risk_free_rate=self.risk_free_rate,
            default_benchmarks=default_benchmarks)


def default_benchmarks(settings: Settings) -> dict[str, str]:
    """``risk.benchmarks`` of trading_config.yaml: market -> benchmark symbol."""
    raw, _ = read_trading_config(settings.trading_config)
    section = (raw.get("risk") or {}).get("benchmarks") or {}
    return {str(market).upper(): str(symbol).upper() for market, symbol in section.items()}


def build_registry(reader: CandleReader, settings: Settings, markets: MarketRegistry | None = None) -> MethodRegistry:
    # The serving process computes small matrices (50 x 50 covariances) one request at a time: OpenBLAS's
    # threads cost more to wake than they save, and on a busy machine a 0.2 ms covariance took 15 ms.
    threadpool_limits(1, user_api="blas")
    registry = MethodRegistry()
    known = markets or load_markets(settings.trading_config)
    benchmarks = default_benchmarks(settings)

    @registry.method("evaluate.risk", idempotent=True)
    def evaluate(params: RiskParams) -> dict[str, Any]:
        """Market value, weights, volatility, VaR/CVaR, drawdown, Sharpe/Sortino, beta, correlation, concentration."""
        try:
            return evaluate_risk(reader, known, params.to_request(benchmarks))
        except StorageError as exc:
            raise Unavailable(f"candle storage is down: {exc}") from None

    return registry
