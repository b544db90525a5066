"""Orders, fills, positions and balances as the replies name them (``schemas``: the same shapes as models).

Plain dicts, built directly: a reply is built for every order, and a pydantic model per reply would
cost more than the ledger's share of it. A unit test validates these against the models.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from tacore.trading.model import Balance, Fill, Order, Position
from tacore.trading.model.market import Quote
from tacore.trading.model.money import ZERO, div, fmt, mul


def iso(ms: int | None) -> str | None:
    """Epoch ms as ISO 8601 UTC, Alpaca's form (``2026-12-04T14:31:02.517Z``)."""
    if ms is None:
        return None
    return _iso(ms)


@lru_cache(maxsize=4096)  # an order's timestamps are mostly the same few milliseconds
def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fill_view(fill: Fill) -> dict[str, Any]:
    return {"id": fill.id, "order_id": fill.order_id, "venue_fill_id": fill.venue_fill_id, "symbol": fill.symbol,
            "side": fill.side.value, "qty": fmt(fill.qty), "price": fmt(fill.price), "fee": fmt(fill.fee),
            "fee_asset": fill.fee_asset, "liquidity": fill.liquidity.value, "filled_at": iso(fill.ts_ms)}


def recent_fill_view(fill: Fill, order: Order | None) -> dict[str, Any]:
    return {**fill_view(fill), "account": fill.account, "order_type": None if order is None else order.type.value}


def order_view(order: Order, fills: Iterable[Fill] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": order.id, "client_order_id": order.client_order_id,
        "created_at": iso(order.created_ms), "updated_at": iso(order.updated_ms),
        "submitted_at": iso(order.submitted_ms), "filled_at": iso(order.filled_ms),
        "expired_at": iso(order.expired_ms), "canceled_at": iso(order.canceled_ms),
        "failed_at": iso(order.rejected_ms), "expires_at": iso(order.expires_ms),
        "asset_class": order.asset_class, "symbol": order.symbol, "qty": fmt(order.qty),
        "filled_qty": fmt(order.filled_qty), "filled_avg_price": fmt(order.filled_avg_price),
        "order_class": "simple", "order_type": order.type.value, "type": order.type.value,
        "side": order.side.value, "time_in_force": order.time_in_force.value,
        "limit_price": fmt(order.limit_price), "stop_price": fmt(order.stop_price), "status": order.status.value,
        "extended_hours": False, "account": order.account, "venue": order.venue,
        "venue_order_id": order.venue_order_id, "fees": fmt(order.fees), "fee_asset": order.quote_asset,
        "reason": order.reason, "request_id": order.request_id,
    }
    if fills is not None:
        view["fills"] = [fill_view(f) for f in fills]
    return view


def position_view(position: Position, asset_class: str, quote: Quote | None) -> dict[str, Any]:
    qty = position.qty
    value = None if quote is None else mul(qty, quote.price)
    unrealized = None if value is None else value - position.cost_basis
    plpc = None
    if unrealized is not None and position.cost_basis != 0:
        plpc = div(unrealized, abs(position.cost_basis))
    return {
        "account": position.account, "symbol": position.symbol, "asset_class": asset_class,
        "quote_asset": position.quote_asset, "side": "long" if qty > 0 else "short" if qty < 0 else "flat",
        "qty": fmt(qty), "qty_available": fmt(position.available_qty),
        "avg_entry_price": fmt(position.avg_entry_price), "cost_basis": fmt(position.cost_basis),
        "current_price": None if quote is None else fmt(quote.price),
        "price_time": None if quote is None else iso(quote.ts_ms),
        "market_value": fmt(value), "unrealized_pl": fmt(unrealized), "unrealized_plpc": fmt(plpc),
        "realized_pl": fmt(position.realized_pnl), "fees": fmt(position.fees),
    }


def balance_view(balance: Balance) -> dict[str, Any]:
    return {"account": balance.account, "asset": balance.asset, "total": fmt(balance.total),
            "reserved": fmt(balance.reserved), "available": fmt(balance.available),
            "deposited": fmt(balance.deposited)}


def equity(balances: Iterable[Balance], positions: Iterable[Position],
           quotes: dict[str, Quote | None]) -> dict[str, dict[str, str]]:
    """Per account and quote asset: cash plus the positions' market value (a position with no price counts
    at its cost basis)."""
    totals: dict[str, dict[str, Decimal]] = {}
    for balance in balances:
        totals.setdefault(balance.account, {})[balance.asset] = balance.total
    for position in positions:
        quote = quotes.get(position.symbol)
        value = position.cost_basis if quote is None else mul(position.qty, quote.price)
        per = totals.setdefault(position.account, {})
        per[position.quote_asset] = per.get(position.quote_asset, ZERO) + value
    return {acct: {asset: fmt(v) or "0" for asset, v in sorted(per.items())} for acct, per in sorted(totals.items())}
