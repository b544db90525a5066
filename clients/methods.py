"""Typed helpers for every method of the service, shared by the sync and the asyncio client.

``call`` returns the reply's data (sync) or an awaitable of it (asyncio); each helper passes that on.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

R = TypeVar("R")


class ServiceMethods(Generic[R]):
    def call(self, method: str, params: dict[str, Any] | None = None, **options: Any) -> R:
        raise NotImplementedError

    def cancel(self, request_id: str, reason: str | None = None, **options: Any) -> R:
        """Cancel a call still queued or running (``broker.cancel``); its caller is answered ``CANCELLED``.

        Returns ``{"request_id", "cancelled", "state"}``: ``queued`` (it never ran), ``dispatched`` (a worker
        had it and was told to stop: it may have run), ``answered`` or ``unknown`` (nothing to cancel).
        """
        params: dict[str, Any] = {"request_id": request_id}
        if reason is not None:
            params["reason"] = reason
        return self.call("broker.cancel", params, **options)

    def preempt(self, request_id: str, reason: str, **options: Any) -> R:
        """Internal, for the flow scheduler: cancel a call to make room for more urgent work (``broker.preempt``)."""
        return self.call("broker.preempt", {"request_id": request_id, "reason": reason}, **options)

    def health_check(self, detailed: bool = False, **options: Any) -> R:
        return self.call("health.check", {"detailed": detailed}, **options)

    def scan_market(self, market: str = "US", criteria: dict[str, Any] | None = None, *,
                    filters: list[dict[str, Any]] | None = None, timeframe: str | None = None,
                    sort_by: str | dict[str, Any] | None = None, order: str | None = None, limit: int | None = None,
                    offset: int | None = None, include: list[str] | None = None, exclude: list[str] | None = None,
                    **options: Any) -> R:
        """``criteria`` as the design document writes it (``min_volume``, ``price_range``); the keywords add a
        filter chain (``[{"field", "op", "value"}]``), sorting and paging to it (see docs/analytics.md)."""
        extra = {"filters": filters, "timeframe": timeframe, "sort_by": sort_by, "order": order, "limit": limit,
                 "offset": offset, "include": include, "exclude": exclude}
        merged = {**(criteria or {}), **{k: v for k, v in extra.items() if v is not None}}
        params: dict[str, Any] = {"market": market}
        if merged or criteria is not None:
            params["criteria"] = merged
        return self.call("scan.market", params, **options)

    def execute_order(self, symbol: str, action: str, quantity: float, order_type: str = "market",
                      price: float | None = None, **options: Any) -> R:
        params: dict[str, Any] = {"symbol": symbol, "action": action, "quantity": quantity, "order_type": order_type}
        if price is not None:
            params["price"] = price
        return self.call("execute.order", params, **options)

    def evaluate_risk(self, portfolio: dict[str, Any] | None = None, *, weights: dict[str, float] | None = None,
                      notional: Any = None, benchmark: str | None = None, interval: str | None = None,
                      lookback_days: float | None = None, horizon: int | None = None,
                      confidence_levels: list[float] | None = None, min_candles: int | None = None,
                      risk_free_rate: float | None = None, end: int | None = None, **options: Any) -> R:
        """Risk of a book of quantities (``portfolio``: symbol -> quantity, Decimal strings welcome) or of
        ``weights`` (with an optional ``notional``); unset options keep the server's defaults."""
        params: dict[str, Any] = {"portfolio": portfolio} if portfolio is not None else {}
        extra = {"weights": weights, "notional": None if notional is None else str(notional),
                 "benchmark": benchmark, "interval": interval, "lookback_days": lookback_days, "horizon": horizon,
                 "confidence_levels": confidence_levels, "min_candles": min_candles,
                 "risk_free_rate": risk_free_rate, "end": end}
        params.update({key: value for key, value in extra.items() if value is not None})
        return self.call("evaluate.risk", params, **options)

    def analyze_stock(self, symbol: str, analysis_type: str = "technical", *, interval: str | None = None,
                      limit: int | None = None, end: int | None = None, **options: Any) -> R:
        """``technical`` (TA-Lib indicators, verdicts, signal) or ``ai`` (an LLM's analysis of the same)."""
        params: dict[str, Any] = {"symbol": symbol, "analysis_type": analysis_type}
        params.update({k: v for k, v in (("interval", interval), ("limit", limit), ("end", end)) if v is not None})
        return self.call("analyze.stock", params, **options)

    def get_market_data(self, symbols: list[str], **options: Any) -> R:
        return self.call("get.market_data", {"symbols": symbols}, **options)

    def flow_run(self, flow: dict[str, Any], inputs: dict[str, Any] | None = None, **options: Any) -> R:
        params: dict[str, Any] = {"flow": flow}
        if inputs is not None:
            params["inputs"] = inputs
        return self.call("flow.run", params, **options)
