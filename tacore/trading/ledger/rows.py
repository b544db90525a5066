"""Domain objects <-> ledger rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tacore.trading.model import (
    Balance,
    Fill,
    Liquidity,
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)

ORDER_FIELDS = (
    "id", "account", "client_order_id", "request_id", "payload_hash", "venue", "venue_order_id", "symbol",
    "asset_class", "quote_asset", "qty", "limit_price", "stop_price", "filled_qty", "filled_notional",
    "filled_avg_price", "fees", "reserved", "triggered", "reason", "created_ms", "updated_ms", "submitted_ms",
    "filled_ms", "canceled_ms", "expired_ms", "rejected_ms", "expires_ms", "market_ms", "event_seq",
)
#: columns that can change after the order is first written
ORDER_MUTABLE = (
    "venue_order_id", "status", "filled_qty", "filled_notional", "filled_avg_price", "fees", "reserved",
    "triggered", "reason", "updated_ms", "submitted_ms", "filled_ms", "canceled_ms", "expired_ms", "rejected_ms",
    "event_seq",
)


def order_row(order: Order) -> dict[str, Any]:
    row = {name: getattr(order, name) for name in ORDER_FIELDS}
    row["side"] = order.side.value
    row["type"] = order.type.value
    row["time_in_force"] = order.time_in_force.value
    row["status"] = order.status.value
    return row


def order_update_row(order: Order) -> dict[str, Any]:
    row = {name: getattr(order, name) for name in ORDER_MUTABLE}
    row["status"] = order.status.value
    row["key_id"] = order.id
    return row


def order_from_row(row: Mapping[str, Any]) -> Order:
    values = {name: row[name] for name in ORDER_FIELDS}
    values["triggered"] = bool(values["triggered"])
    return Order(**values, side=Side(row["side"]), type=OrderType(row["type"]),
                 time_in_force=TimeInForce(row["time_in_force"]), status=OrderStatus(row["status"]))


def event_row(event: OrderEvent) -> dict[str, Any]:
    return {"order_id": event.order_id, "seq": event.seq, "kind": event.kind.value, "status": event.status.value,
            "filled_qty": event.filled_qty, "ts_ms": event.ts_ms,
            "detail": orjson.dumps(event.detail).decode() if event.detail else None}


def fill_row(fill: Fill) -> dict[str, Any]:
    return {"id": fill.id, "order_id": fill.order_id, "venue_fill_id": fill.venue_fill_id, "account": fill.account,
            "symbol": fill.symbol, "side": fill.side.value, "qty": fill.qty, "price": fill.price, "fee": fill.fee,
            "fee_asset": fill.fee_asset, "liquidity": fill.liquidity.value, "ts_ms": fill.ts_ms}


def fill_from_row(row: Mapping[str, Any]) -> Fill:
    return Fill(id=row["id"], order_id=row["order_id"], account=row["account"], symbol=row["symbol"],
                side=Side(row["side"]), qty=row["qty"], price=row["price"], fee=row["fee"], fee_asset=row["fee_asset"],
                liquidity=Liquidity(row["liquidity"]), ts_ms=row["ts_ms"], venue_fill_id=row["venue_fill_id"])


def position_row(position: Position) -> dict[str, Any]:
    return {"account": position.account, "symbol": position.symbol, "quote_asset": position.quote_asset,
            "qty": position.qty, "cost_basis": position.cost_basis, "realized_pnl": position.realized_pnl,
            "fees": position.fees, "reserved_qty": position.reserved_qty, "updated_ms": position.updated_ms}


def position_from_row(row: Mapping[str, Any]) -> Position:
    return Position(account=row["account"], symbol=row["symbol"], quote_asset=row["quote_asset"], qty=row["qty"],
                    cost_basis=row["cost_basis"], realized_pnl=row["realized_pnl"], fees=row["fees"],
                    reserved_qty=row["reserved_qty"], updated_ms=row["updated_ms"])


def balance_row(balance: Balance) -> dict[str, Any]:
    return {"account": balance.account, "asset": balance.asset, "total": balance.total,
            "reserved": balance.reserved, "deposited": balance.deposited, "updated_ms": balance.updated_ms}


def balance_from_row(row: Mapping[str, Any]) -> Balance:
    return Balance(account=row["account"], asset=row["asset"], total=row["total"], reserved=row["reserved"],
                   deposited=row["deposited"], updated_ms=row["updated_ms"])
