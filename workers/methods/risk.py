"""evaluate.risk: portfolio risk from stored candles (served by the data agent, which owns the store).

The handler validates the book and the options, then ``tacore.analytics.risk`` does the work in one store
query. The design document's payload ``{"portfolio": {"AAPL": 100, "GOOGL": 50}}`` holds quantities;
``weights`` (with an optional ``notional``) describe a book by weight instead. The params model lives in
``tacore.analytics.params`` (the sidecar validates with it too).
"""

from __future__ import annotations

import time
from typing import Any

from threadpoolctl import threadpool_limits

from tacore.analytics.candles import CandleReader
from tacore.analytics.params import RiskParams
from tacore.analytics.risk import Holding, RiskRequest, evaluate_risk
from tacore.errors import Unavailable
from tacore.markets import MarketRegistry, load_markets
from tacore.markets.registry import read_trading_config
from tacore.settings import Settings
from tacore.store.klines import StorageError
from workers.registry import MethodRegistry


def risk_request(params: RiskParams, default_benchmarks: dict[str, str]) -> RiskRequest:
    """The validated params as the domain's request (quantities or weights; as of ``end``, or now)."""
    if params.portfolio is not None:
        holdings = [Holding(s, quantity=q) for s, q in params.portfolio.items()]
    else:
        holdings = [Holding(s, weight=w) for s, w in (params.weights or {}).items()]
    return RiskRequest(
        holdings=holdings, end_ms=params.end if params.end is not None else int(time.time() * 1000),
        notional=params.notional, benchmark=params.benchmark, interval=params.interval,
        lookback_days=params.lookback(), horizon=params.horizon, confidence_levels=tuple(params.confidence_levels),
        min_candles=params.min_candles, risk_free_rate=params.risk_free_rate,
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
            return evaluate_risk(reader, known, risk_request(params, benchmarks))
        except StorageError as exc:
            raise Unavailable(f"candle storage is down: {exc}") from None

    return registry
