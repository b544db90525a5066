"""The order, its fills and its events: a state machine whose every transition appends an ``OrderEvent``.

Invariants held here (a transition that would break one raises ``OrderStateError`` and changes nothing):
``filled_qty`` never decreases and never exceeds ``qty``; a terminal state (filled, canceled, expired,
rejected) never changes; every transition is one event, numbered per order from 1.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tacore.trading.model.enums import (
    Liquidity,
    OrderEventKind,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from tacore.trading.model.errors import OrderStateError
from tacore.trading.model.money import ZERO, div, mul


def new_id() -> str:
    """A random (version 4) UUID, as Alpaca's order ids are."""
    return str(uuid.UUID(bytes=os.urandom(16), version=4))


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of (part of) an order, at one price, with its fee in the quote asset."""

    id: str
    order_id: str
    account: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    liquidity: Liquidity
    ts_ms: int
    venue_fill_id: str  # unique per order at its venue: a fill reported twice is recorded once

    @property
    def notional(self) -> Decimal:
        return mul(self.qty, self.price)


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One transition of one order (a row of ``order_events``)."""

    order_id: str
    seq: int
    kind: OrderEventKind
    status: OrderStatus  # after the transition
    filled_qty: Decimal  # after the transition
    ts_ms: int
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class Order:
    id: str
    account: str
    client_order_id: str
    venue: str
    symbol: str
    asset_class: str  # "crypto" | "us_equity" (Alpaca's names)
    quote_asset: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    qty: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    payload_hash: str  # of the intent: the same client order id with another payload is a conflict
    request_id: str | None
    created_ms: int
    status: OrderStatus = OrderStatus.ACCEPTED
    filled_qty: Decimal = ZERO
    filled_notional: Decimal = ZERO  # sum of qty x price over the fills
    filled_avg_price: Decimal | None = None
    fees: Decimal = ZERO
    venue_order_id: str | None = None
    reason: str | None = None  # why it was rejected, canceled or expired
    updated_ms: int = 0
    submitted_ms: int | None = None  # acknowledged by the venue
    filled_ms: int | None = None
    canceled_ms: int | None = None
    expired_ms: int | None = None
    rejected_ms: int | None = None
    expires_ms: int | None = None  # a day order's session end
    #: the market's time when it arrived (the exchange time of the price it met; else the wall clock):
    #: it rests on candles that open at or after it
    market_ms: int = 0
    triggered: bool = False  # a stop's price was reached (a stop_limit now works as a limit)
    reserved: Decimal = ZERO  # cash (buy) or quantity (sell) held for what is still open
    event_seq: int = 0
    #: transitions not yet written to the ledger (the ledger drains them)
    new_events: list[OrderEvent] = field(default_factory=list)

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def accept(cls, *, account: str, client_order_id: str, venue: str, symbol: str, asset_class: str,
               quote_asset: str, side: Side, type: OrderType, time_in_force: TimeInForce, qty: Decimal,
               limit_price: Decimal | None, stop_price: Decimal | None, payload_hash: str,
               request_id: str | None, ts_ms: int, order_id: str | None = None) -> Order:
        """A new order in state ``accepted`` (the intent), with its first event."""
        if qty <= 0:
            raise OrderStateError(f"order quantity must be positive, got {qty}")
        order = cls(id=order_id or new_id(), account=account, client_order_id=client_order_id, venue=venue,
                    symbol=symbol, asset_class=asset_class, quote_asset=quote_asset, side=side, type=type,
                    time_in_force=time_in_force, qty=qty, limit_price=limit_price, stop_price=stop_price,
                    payload_hash=payload_hash, request_id=request_id, created_ms=ts_ms, updated_ms=ts_ms,
                    market_ms=ts_ms)
        order._event(OrderEventKind.ACCEPTED, ts_ms)
        return order

    # -- derived ------------------------------------------------------------------------------------
    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status.open

    # -- transitions ----------------------------------------------------------------------------------
    def acknowledge(self, ts_ms: int, venue_order_id: str | None = None) -> None:
        """The venue has the order (accepted -> new); a repeated acknowledgement changes nothing."""
        if venue_order_id is not None:
            self.venue_order_id = venue_order_id
        if self.status is not OrderStatus.ACCEPTED:
            self._require_open("acknowledged")
            return
        self.submitted_ms = ts_ms
        self._move(OrderStatus.NEW, OrderEventKind.NEW, ts_ms, {"venue_order_id": venue_order_id})

    def trigger(self, ts_ms: int, price: Decimal) -> None:
        """A stop's price was reached: from now on it is a market (stop) or limit (stop_limit) order."""
        self._require_open("triggered")
        if not self.type.has_stop:
            raise OrderStateError(f"order {self.id}: a {self.type} order has no stop to trigger")
        if self.triggered:
            return
        self.triggered = True
        self._event(OrderEventKind.TRIGGERED, ts_ms, {"price": str(price)})

    def apply_fill(self, fill: Fill) -> None:
        """Record one fill: ``filled_qty`` grows by it, never past ``qty``; the last one makes it filled."""
        self._require_open("filled")
        if fill.order_id != self.id:
            raise OrderStateError(f"fill {fill.id} belongs to order {fill.order_id}, not {self.id}")
        if fill.qty <= 0 or fill.price <= 0 or fill.fee < 0:
            raise OrderStateError(f"order {self.id}: fill of {fill.qty} at {fill.price} (fee {fill.fee}) is invalid")
        filled = self.filled_qty + fill.qty
        if filled > self.qty:
            raise OrderStateError(f"order {self.id}: a fill of {fill.qty} would fill {filled}, over its {self.qty}")
        if self.status is OrderStatus.ACCEPTED:
            self.submitted_ms = fill.ts_ms
        self.filled_qty = filled
        self.filled_notional += fill.notional
        self.filled_avg_price = div(self.filled_notional, filled)
        self.fees += fill.fee
        if filled == self.qty:
            status = OrderStatus.FILLED
            self.filled_ms = fill.ts_ms
        elif self.status is OrderStatus.PENDING_CANCEL:
            status = OrderStatus.PENDING_CANCEL
        else:
            status = OrderStatus.PARTIALLY_FILLED
        self._move(status, OrderEventKind.FILLED, fill.ts_ms, {
            "fill_id": fill.id, "qty": str(fill.qty), "price": str(fill.price), "fee": str(fill.fee),
            "liquidity": str(fill.liquidity)})

    def request_cancel(self, ts_ms: int) -> None:
        """A cancel was sent to a venue that answers later (pending_cancel)."""
        self._require_open("canceled")
        if self.status is not OrderStatus.PENDING_CANCEL:
            self._move(OrderStatus.PENDING_CANCEL, OrderEventKind.PENDING_CANCEL, ts_ms)

    def cancel(self, ts_ms: int, reason: str) -> None:
        self._require_open("canceled")
        self.canceled_ms = ts_ms
        self.reason = reason
        self._move(OrderStatus.CANCELED, OrderEventKind.CANCELED, ts_ms, {"reason": reason})

    def expire(self, ts_ms: int, reason: str) -> None:
        self._require_open("expired")
        self.expired_ms = ts_ms
        self.reason = reason
        self._move(OrderStatus.EXPIRED, OrderEventKind.EXPIRED, ts_ms, {"reason": reason})

    def reject(self, ts_ms: int, reason: str) -> None:
        """Refused before anything filled (by TACore's checks or the venue)."""
        self._require_open("rejected")
        if self.filled_qty:
            raise OrderStateError(f"order {self.id}: cannot be rejected after {self.filled_qty} filled")
        self.rejected_ms = ts_ms
        self.reason = reason
        self._move(OrderStatus.REJECTED, OrderEventKind.REJECTED, ts_ms, {"reason": reason})

    # -- internals ------------------------------------------------------------------------------------
    def _require_open(self, what: str) -> None:
        if self.status.terminal:
            raise OrderStateError(f"order {self.id} is {self.status}: a terminal state; it cannot be {what}")

    def _move(self, status: OrderStatus, kind: OrderEventKind, ts_ms: int,
              detail: dict[str, Any] | None = None) -> None:
        self.status = status
        self._event(kind, ts_ms, detail)

    def _event(self, kind: OrderEventKind, ts_ms: int, detail: dict[str, Any] | None = None) -> None:
        self.event_seq += 1
        self.updated_ms = max(self.updated_ms, ts_ms)
        clean = {k: v for k, v in (detail or {}).items() if v is not None}
        self.new_events.append(OrderEvent(self.id, self.event_seq, kind, self.status, self.filled_qty, ts_ms, clean))

    def drain_events(self) -> list[OrderEvent]:
        events, self.new_events = self.new_events, []
        return events
