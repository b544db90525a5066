"""Orders: ``execute.order``, ``order.get``, ``order.cancel``, ``order.list``, ``fill.list`` -- thin over the
order engine.

Served by the order process (``workers/orders``), the ledger's single writer. ``execute.order`` is not
idempotent for the broker (never re-dispatched after a worker death) but resumable: the ledger's claim
of the client order id makes a second run answer the order the first one placed (docs/orders.md).
"""

from __future__ import annotations

from typing import Any

from tacore.errors import InvalidParams
from tacore.trading.engine import OrderEngine
from tacore.trading.intents import OrderIntent
from tacore.trading.ledger import OrderQuery
from tacore.trading.ledger.store import decode_cursor
from tacore.trading.model import OPEN_STATUSES, TERMINAL_STATUSES, OrderStatus
from tacore.trading.schemas import (
    ExecuteOrderParams,
    FillListParams,
    OrderCancelParams,
    OrderGetParams,
    OrderListParams,
)
from tacore.trading.views import order_view, recent_fill_view
from workers.registry import CallContext, MethodRegistry

ORDER_METHODS = ("execute.order", "order.get", "order.cancel", "order.list", "fill.list")


def build_registry(engine: OrderEngine) -> MethodRegistry:
    registry = MethodRegistry()

    @registry.method("execute.order", role="trade", resumable=True)
    def execute_order(params: ExecuteOrderParams, ctx: CallContext) -> dict[str, Any]:
        """Place an order (market, limit, stop, stop_limit); the reply is the order, Alpaca's fields."""
        placed = engine.place(OrderIntent(
            symbol=params.symbol, side=params.action, type=params.order_type, time_in_force=params.time_in_force,
            qty=params.quantity, limit_price=params.price, stop_price=params.stop_price, account=params.account,
            venue=params.venue, client_order_id=params.client_order_id, request_id=ctx.request_id))
        return order_view(placed.order)

    @registry.method("order.get", idempotent=True, role="read")
    def order_get(params: OrderGetParams) -> dict[str, Any]:
        """One order by id or client_order_id (with its fills when asked)."""
        order = engine.find(params.account, params.order_id, params.client_order_id)
        fills = engine.fills_of([order.id])[order.id] if params.include_fills else None
        return order_view(order, fills)

    @registry.method("order.cancel", idempotent=True, role="trade")
    def order_cancel(params: OrderCancelParams) -> dict[str, Any]:
        """Cancel an open order; the reply is the order (canceled, or what it became first)."""
        return order_view(engine.cancel(params.account, params.order_id, params.client_order_id))

    @registry.method("order.list", idempotent=True, role="read")
    def order_list(params: OrderListParams) -> dict[str, Any]:
        """Orders by status (open, closed, all or one), symbols and creation time, newest first, in pages."""
        if params.account is not None:
            engine.accounts.get(params.account)
        if params.cursor is not None:
            try:
                decode_cursor(params.cursor)
            except ValueError as exc:
                raise InvalidParams(str(exc), details=[{"field": "cursor", "message": str(exc)}]) from None
        statuses: frozenset[OrderStatus] | None
        if params.status == "open":
            statuses = OPEN_STATUSES
        elif params.status == "closed":
            statuses = TERMINAL_STATUSES
        elif params.status == "all":
            statuses = None
        else:
            statuses = frozenset({OrderStatus(params.status)})
        page, cursor = engine.list_orders(OrderQuery(
            account=params.account, statuses=statuses, symbols=tuple(params.symbols), after_ms=params.after,
            until_ms=params.until, newest_first=params.direction == "desc", limit=params.limit, cursor=params.cursor))
        fills = engine.fills_of([o.id for o in page]) if params.include_fills else {}
        orders = [order_view(o, fills.get(o.id) if params.include_fills else None) for o in page]
        return {"orders": orders, "count": len(orders), "next_cursor": cursor}

    @registry.method("fill.list", idempotent=True, role="read")
    def fill_list(params: FillListParams) -> dict[str, Any]:
        """The newest fills across all orders (of one account), newest first, each with its order's type."""
        if params.account is not None:
            engine.accounts.get(params.account)
        fills = [recent_fill_view(fill, order) for fill, order in engine.recent_fills(params.account, params.limit)]
        return {"fills": fills, "count": len(fills)}

    return registry
