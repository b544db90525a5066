"""The names of an order's states, types and sides: Alpaca's order object spells them this way."""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    ACCEPTED = "accepted"  # recorded by TACore (the intent), not yet acknowledged by the venue
    NEW = "new"  # acknowledged by the venue, nothing filled
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    PENDING_CANCEL = "pending_cancel"  # a cancel was sent; the venue has not confirmed it

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def open(self) -> bool:
        return self not in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED})
OPEN_STATUSES = frozenset(OrderStatus) - TERMINAL_STATUSES


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"

    @property
    def has_limit(self) -> bool:
        return self in (OrderType.LIMIT, OrderType.STOP_LIMIT)

    @property
    def has_stop(self) -> bool:
        return self in (OrderType.STOP, OrderType.STOP_LIMIT)


class TimeInForce(StrEnum):
    DAY = "day"  # until the end of the market's session (crypto: the UTC day)
    GTC = "gtc"  # until filled or canceled
    IOC = "ioc"  # fill what can be filled at once, cancel the rest
    FOK = "fok"  # fill all at once or nothing

    @property
    def rests(self) -> bool:
        """Whether an unfilled remainder may wait for later candles."""
        return self in (TimeInForce.DAY, TimeInForce.GTC)


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class Liquidity(StrEnum):
    MAKER = "maker"  # the order rested and was filled by the market
    TAKER = "taker"  # the order took liquidity when it arrived (or when its stop triggered)


class OrderEventKind(StrEnum):
    """One row of ``order_events`` per transition (nautilus_trader's OrderAccepted, OrderFilled...)."""

    ACCEPTED = "accepted"
    NEW = "new"
    TRIGGERED = "triggered"  # a stop (or stop_limit) price was reached
    FILLED = "filled"  # one fill (partial or the last one); the status after it says which
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
