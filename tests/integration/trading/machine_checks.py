"""Invariants both state machines check after every step."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from tacore.trading.engine import OrderEngine
from tacore.trading.ledger import Ledger, OrderQuery
from tacore.trading.model import Order, OrderStatus, Side


def check_books(engine: OrderEngine) -> None:
    """Cash plus cost basis conserved net of fees; reservations equal what open orders hold; no overdraft."""
    positions = engine.positions(None)
    balances = engine.balances(None)
    at_cost: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    fees: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    realized: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for p in positions:
        key = (p.account, p.quote_asset)
        at_cost[key] += p.cost_basis
        fees[key] += p.fees
        realized[key] += p.realized_pnl
        assert p.qty >= 0, f"{p.symbol}: a paper account went short ({p.qty})"
        assert 0 <= p.reserved_qty <= p.qty, f"{p.symbol}: reserved {p.reserved_qty} of {p.qty}"
    held_cash: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    held_qty: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for order in engine.open_orders():
        if order.side is Side.BUY:
            held_cash[(order.account, order.quote_asset)] += order.reserved
        else:
            held_qty[(order.account, order.symbol)] += order.reserved
    for b in balances:
        key = (b.account, b.asset)
        assert b.total + at_cost[key] == b.deposited - fees[key] + realized[key], f"{key}: not conserved"
        assert b.total >= 0, f"{key}: overdrawn ({b.total})"
        assert 0 <= b.reserved <= b.total, f"{key}: reserved {b.reserved} of {b.total}"
        assert b.reserved == held_cash[key], f"{key}: reserved {b.reserved}, open buys hold {held_cash[key]}"
    for p in positions:
        assert p.reserved_qty == held_qty[(p.account, p.symbol)]


def check_orders(source: OrderEngine | Ledger, seen: dict[str, tuple[OrderStatus, Decimal]]) -> list[Order]:
    """filled_qty within qty and never decreasing; terminal states final. Returns every order.
    (Read through the engine, this commits what is staged first; read from a ``Ledger`` it does not.)"""
    everything, cursor = [], None
    while True:
        page, cursor = source.list_orders(OrderQuery(statuses=None, limit=500, cursor=cursor))
        everything.extend(page)
        if cursor is None:
            break
    for order in everything:
        assert 0 <= order.filled_qty <= order.qty
        before = seen.get(order.id)
        if before is not None:
            status, filled = before
            assert order.filled_qty >= filled, f"order {order.id}: filled_qty went down"
            if status.terminal:
                assert (order.status, order.filled_qty) == before, f"order {order.id} left {status}"
        seen[order.id] = (order.status, order.filled_qty)
        if order.type.has_limit and order.filled_avg_price is not None and not order.type.has_stop:
            assert order.limit_price is not None
            worse = order.filled_avg_price > order.limit_price if order.side is Side.BUY \
                else order.filled_avg_price < order.limit_price
            assert not worse, f"limit {order.limit_price} filled at {order.filled_avg_price}"
    return everything
