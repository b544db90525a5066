"""The paper venue's price rules, as pure functions of a price or a candle (each proven by a unit test).

- A market order pays the last price moved against it by the half-spread and the slippage.
- A limit order on arrival is marketable when it reaches the touch (the last price plus the half-spread
  for a buy, minus for a sell) and fills at the better of its limit and the market order's price (with
  no half-spread and no slippage configured: the better of its limit and the last price).
- A resting limit fills on a later candle that trades through it (buy: low <= limit; sell: high >=
  limit) at the better of its limit and the candle's open: a gap fills at the open.
- A stop triggers on a candle's high (buy) or low (sell) and fills as a market order at the worse of
  its stop and the open; a stop_limit triggers the same way and then works as a limit.
- Open orders reserve what they may spend: a buy its remaining quantity at its limit (or stop, or last
  price, moved as a market order would be) plus the larger fee; a sell its remaining quantity.
"""

from __future__ import annotations

from decimal import Decimal

from tacore.trading.accounts import Costs
from tacore.trading.model import Order, OrderType, Side
from tacore.trading.model.market import Candle
from tacore.trading.model.money import ZERO, bps_factor, mul


def _moved(side: Side, reference: Decimal, bps: Decimal) -> Decimal:
    """``reference`` moved against a taker on ``side`` by ``bps``."""
    return mul(reference, bps_factor(bps if side is Side.BUY else -bps))


def touch_price(side: Side, last: Decimal, costs: Costs) -> Decimal:
    """The price a taker meets: the ask for a buy, the bid for a sell."""
    return _moved(side, last, costs.half_spread_bps)


def market_price(side: Side, reference: Decimal, costs: Costs) -> Decimal:
    """A market order's fill price against ``reference`` (the last price, or the worse of a stop and an open)."""
    return _moved(side, reference, costs.half_spread_bps + costs.slippage_bps)


def arrival_limit_price(side: Side, limit: Decimal, last: Decimal, costs: Costs) -> Decimal | None:
    """A limit order's price on arrival, or None when it is not marketable (it rests)."""
    if side is Side.BUY:
        return min(limit, market_price(side, last, costs)) if limit >= touch_price(side, last, costs) else None
    return max(limit, market_price(side, last, costs)) if limit <= touch_price(side, last, costs) else None


def resting_limit_price(side: Side, limit: Decimal, candle: Candle) -> Decimal | None:
    """A resting limit's fill price on ``candle``, or None when the candle did not trade through it."""
    if side is Side.BUY:
        return min(limit, candle.open) if candle.low <= limit else None
    return max(limit, candle.open) if candle.high >= limit else None


def stop_reached(side: Side, stop: Decimal, last: Decimal) -> bool:
    """Whether the last price is already at or past the stop (it triggers on arrival)."""
    return last >= stop if side is Side.BUY else last <= stop


def stop_trigger_price(side: Side, stop: Decimal, candle: Candle) -> Decimal | None:
    """The price a stop triggers at on ``candle`` (the worse of stop and open), or None if not reached."""
    if side is Side.BUY:
        return max(stop, candle.open) if candle.high >= stop else None
    return min(stop, candle.open) if candle.low <= stop else None


def fee(notional: Decimal, bps: Decimal) -> Decimal:
    return mul(notional, bps_factor(bps) - 1)


def reference_price(order: Order, last: Decimal | None, costs: Costs) -> Decimal | None:
    """The price a buy's reservation counts at: its limit; a stop's price (or the last price when past it)
    as a market order pays it; the last price for a market order's resting remainder."""
    if order.type.has_limit:
        return order.limit_price
    base = last
    if order.type is OrderType.STOP and order.stop_price is not None:
        base = order.stop_price if last is None else max(order.stop_price, last)
    if base is None:
        return order.filled_avg_price
    return market_price(Side.BUY, base, costs)


def reservation(order: Order, costs: Costs, last: Decimal | None, *, remaining: Decimal | None = None) -> Decimal:
    """What ``order``'s remaining quantity (or ``remaining``) holds: cash (quote asset) for a buy, quantity
    for a sell."""
    remaining = order.remaining_qty if remaining is None else remaining
    if remaining <= 0:
        return ZERO
    if order.side is Side.SELL:
        return remaining
    price = reference_price(order, last, costs)
    if price is None:
        return ZERO
    return mul(mul(remaining, price), bps_factor(max(costs.maker_fee_bps, costs.taker_fee_bps)))
