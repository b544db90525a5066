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

    # -- flows (docs/flows.md) -------------------------------------------------------------------------
    def flow_run(self, flow: dict[str, Any], **options: Any) -> R:
        """Register (or replace) a flow: TradingFlow's ``{"flow_id", "cycle_interval", "flow_json"}`` or the
        workflow demo's template; returns its components and next run."""
        return self.call("flow.run", flow, **options)

    def flow_status(self, flow_id: str, cycles: int = 10, **options: Any) -> R:
        return self.call("flow.status", {"flow_id": flow_id, "cycles": cycles}, **options)

    def flow_stop(self, flow_id: str, cycle: int | None = None, component: int | None = None,
                  reason: str | None = None, **options: Any) -> R:
        """Stop a flow; with ``cycle`` only that cycle; with ``component`` too, only that component of it."""
        params: dict[str, Any] = {"flow_id": flow_id}
        params.update({k: v for k, v in (("cycle", cycle), ("component", component), ("reason", reason))
                       if v is not None})
        return self.call("flow.stop", params, **options)

    def flow_cycle(self, flow_id: str, cycle: int | None = None, **options: Any) -> R:
        """Start a manual cycle now (a retry with the same request_id answers the cycle it started)."""
        params: dict[str, Any] = {"flow_id": flow_id}
        if cycle is not None:
            params["cycle"] = cycle
        return self.call("flow.cycle", params, **options)

    def flow_cycle_get(self, flow_id: str, cycle: int, **options: Any) -> R:
        return self.call("flow.cycle.get", {"flow_id": flow_id, "cycle": cycle}, **options)

    def flow_cycle_retry(self, flow_id: str, cycle: int, **options: Any) -> R:
        return self.call("flow.cycle.retry", {"flow_id": flow_id, "cycle": cycle}, **options)

    def flow_cycles(self, flow_id: str, limit: int = 50, before: int | None = None, **options: Any) -> R:
        params: dict[str, Any] = {"flow_id": flow_id, "limit": limit}
        if before is not None:
            params["before"] = before
        return self.call("flow.cycles", params, **options)

    def flow_list(self, status: str | None = None, limit: int = 100, offset: int = 0, **options: Any) -> R:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status is not None:
            params["status"] = status
        return self.call("flow.list", params, **options)

    def flow_logs(self, flow_id: str, cycle: int | None = None, node_id: str | None = None,
                  task_id: str | None = None, after_id: int = 0, limit: int = 200, **options: Any) -> R:
        params: dict[str, Any] = {"flow_id": flow_id, "after_id": after_id, "limit": limit}
        params.update({k: v for k, v in (("cycle", cycle), ("node_id", node_id), ("task_id", task_id))
                       if v is not None})
        return self.call("flow.logs", params, **options)

    def flow_stats(self, **options: Any) -> R:
        return self.call("flow.stats", {}, **options)

    def node_execute(self, node: dict[str, Any], **options: Any) -> R:
        """Run one node now (TradingFlow's ``/nodes/execute`` payload, plus ``inputs``)."""
        return self.call("node.execute", node, **options)

    def node_status(self, node_id: str, flow_id: str | None = None, **options: Any) -> R:
        params: dict[str, Any] = {"node_id": node_id}
        if flow_id is not None:
            params["flow_id"] = flow_id
        return self.call("node.status", params, **options)

    def node_stop(self, node_id: str, flow_id: str | None = None, **options: Any) -> R:
        params: dict[str, Any] = {"node_id": node_id}
        if flow_id is not None:
            params["flow_id"] = flow_id
        return self.call("node.stop", params, **options)
