"""Balances and positions of every account, and what a fill or a reservation does to them.

Accounting is exact and signed (average cost): a position keeps its quantity and cost basis; a fill
that reduces it realises ``closed x price - the cost basis it removes``. Cash moves by the fill's
notional and fee. So, for every account and quote asset, always exactly::

    cash + sum(cost basis) == cash deposited - sum(fees) + sum(realised P&L)

which the state-machine tests check after every step. Open orders reserve what they may spend:
cash for a buy, quantity for a sell; a fill releases its share, the end of the order the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tacore.trading.model.enums import Side
from tacore.trading.model.errors import OrderStateError
from tacore.trading.model.money import ZERO, div, mul, mul_div
from tacore.trading.model.order import Fill, Order


@dataclass(slots=True, eq=False)
class Balance:
    """Cash of one asset in one account."""

    account: str
    asset: str
    total: Decimal = ZERO
    reserved: Decimal = ZERO  # held by open buy orders
    deposited: Decimal = ZERO  # starting balance and deposits: the reference of the conservation check
    updated_ms: int = 0

    @property
    def available(self) -> Decimal:
        return self.total - self.reserved


@dataclass(slots=True, eq=False)
class Position:
    """A holding of one symbol in one account (signed: negative is short), at average cost."""

    account: str
    symbol: str
    quote_asset: str
    qty: Decimal = ZERO
    cost_basis: Decimal = ZERO  # signed like qty: what the open quantity cost
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO  # paid on this symbol's fills, in the quote asset
    reserved_qty: Decimal = ZERO  # held by open sell orders
    updated_ms: int = 0

    @property
    def available_qty(self) -> Decimal:
        return self.qty - self.reserved_qty

    @property
    def avg_entry_price(self) -> Decimal | None:
        return None if self.qty == 0 else div(self.cost_basis, self.qty)

    def apply(self, side: Side, qty: Decimal, price: Decimal) -> Decimal:
        """Apply one execution; returns the cash it moves, before fees (negative for a buy)."""
        signed = qty if side is Side.BUY else -qty
        cash = ZERO
        if self.qty != 0 and (self.qty > 0) != (signed > 0):  # reduces (maybe flips) the position
            held = abs(self.qty)
            closed = min(qty, held)
            removed = self.cost_basis if closed == held else mul_div(self.cost_basis, closed, held)
            value = mul(closed, price)
            direction = 1 if self.qty > 0 else -1
            self.realized_pnl += value * direction - removed
            self.cost_basis -= removed
            self.qty += closed if signed > 0 else -closed
            cash += value if side is Side.SELL else -value
            qty -= closed
        if qty > 0:  # opens or adds
            value = mul(qty, price)
            self.qty += qty if signed > 0 else -qty
            self.cost_basis += value if signed > 0 else -value
            cash += value if side is Side.SELL else -value
        return cash


class Portfolio:
    """Every account's balances and positions in memory, with the keys changed since the last save."""

    def __init__(self) -> None:
        self.balances: dict[tuple[str, str], Balance] = {}
        self.positions: dict[tuple[str, str], Position] = {}
        self.stored_balances: set[tuple[str, str]] = set()  # rows that exist in the ledger (update, not insert)
        self.stored_positions: set[tuple[str, str]] = set()
        self.dirty_balances: set[tuple[str, str]] = set()
        self.dirty_positions: set[tuple[str, str]] = set()

    def replace_with(self, other: Portfolio) -> None:
        """Take ``other``'s state (reloaded from the ledger) while keeping this object, which others hold."""
        self.balances, self.positions = other.balances, other.positions
        self.stored_balances, self.stored_positions = other.stored_balances, other.stored_positions
        self.dirty_balances, self.dirty_positions = other.dirty_balances, other.dirty_positions

    # -- lookups --------------------------------------------------------------------------------------
    def balance(self, account: str, asset: str) -> Balance:
        key = (account, asset)
        found = self.balances.get(key)
        if found is None:
            found = self.balances[key] = Balance(account, asset)
            self.dirty_balances.add(key)
        return found

    def peek_balance(self, account: str, asset: str) -> Balance | None:
        return self.balances.get((account, asset))

    def position(self, account: str, symbol: str, quote_asset: str) -> Position:
        key = (account, symbol)
        found = self.positions.get(key)
        if found is None:
            found = self.positions[key] = Position(account, symbol, quote_asset)
            self.dirty_positions.add(key)
        return found

    def peek_position(self, account: str, symbol: str) -> Position | None:
        return self.positions.get((account, symbol))

    def deposit(self, account: str, asset: str, amount: Decimal, ts_ms: int) -> Balance:
        balance = self.balance(account, asset)
        balance.total += amount
        balance.deposited += amount
        balance.updated_ms = ts_ms
        self.dirty_balances.add((account, asset))
        return balance

    # -- reservations ---------------------------------------------------------------------------------
    def reserve(self, order: Order, amount: Decimal, ts_ms: int) -> None:
        """Hold ``amount`` more for ``order``: quote cash for a buy, base quantity for a sell."""
        if amount <= 0:
            return
        if order.side is Side.BUY:
            balance = self.balance(order.account, order.quote_asset)
            balance.reserved += amount
            balance.updated_ms = ts_ms
            self.dirty_balances.add((order.account, order.quote_asset))
        else:
            position = self.position(order.account, order.symbol, order.quote_asset)
            position.reserved_qty += amount
            position.updated_ms = ts_ms
            self.dirty_positions.add((order.account, order.symbol))
        order.reserved += amount

    def release(self, order: Order, amount: Decimal | None, ts_ms: int) -> None:
        """Give back ``amount`` of what ``order`` holds (all of it when None)."""
        amount = order.reserved if amount is None else min(amount, order.reserved)
        if amount <= 0:
            return
        if order.side is Side.BUY:
            balance = self.balance(order.account, order.quote_asset)
            balance.reserved -= amount
            balance.updated_ms = ts_ms
            self.dirty_balances.add((order.account, order.quote_asset))
        else:
            position = self.position(order.account, order.symbol, order.quote_asset)
            position.reserved_qty -= amount
            position.updated_ms = ts_ms
            self.dirty_positions.add((order.account, order.symbol))
        order.reserved -= amount

    # -- fills ------------------------------------------------------------------------------------------
    def apply_fill(self, order: Order, fill: Fill) -> None:
        """Record ``fill`` on the order, the position and the cash; release its share of the reservation."""
        remaining_before = order.remaining_qty
        order.apply_fill(fill)
        if order.side is Side.SELL:
            share = fill.qty
        elif fill.qty == remaining_before:
            share = order.reserved
        else:
            share = mul_div(order.reserved, fill.qty, remaining_before)
        self.release(order, share, fill.ts_ms)
        position = self.position(order.account, order.symbol, order.quote_asset)
        cash = position.apply(order.side, fill.qty, fill.price)
        position.fees += fill.fee
        position.updated_ms = fill.ts_ms
        balance = self.balance(order.account, order.quote_asset)
        if fill.fee_asset != order.quote_asset:
            raise OrderStateError(f"fill {fill.id}: fee in {fill.fee_asset}, expected {order.quote_asset}")
        balance.total += cash - fill.fee
        balance.updated_ms = fill.ts_ms
        self.dirty_positions.add((order.account, order.symbol))
        self.dirty_balances.add((order.account, order.quote_asset))

    def finish(self, order: Order, ts_ms: int) -> None:
        """The order ended (or left nothing open): release whatever it still holds."""
        self.release(order, None, ts_ms)
