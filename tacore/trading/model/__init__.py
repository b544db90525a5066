"""Orders, fills, positions and balances, with ``Decimal`` money and the state machine's invariants."""

from __future__ import annotations

from tacore.trading.model.enums import (
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    Liquidity,
    OrderEventKind,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from tacore.trading.model.errors import OrderStateError
from tacore.trading.model.order import Fill, Order, OrderEvent, new_id
from tacore.trading.model.portfolio import Balance, Portfolio, Position

__all__ = [
    "OPEN_STATUSES",
    "TERMINAL_STATUSES",
    "Balance",
    "Fill",
    "Liquidity",
    "Order",
    "OrderEvent",
    "OrderEventKind",
    "OrderStateError",
    "OrderStatus",
    "OrderType",
    "Portfolio",
    "Position",
    "Side",
    "TimeInForce",
    "new_id",
]
