"""The paper venue: deterministic fills against TACore's own market data (``tacore.trading.pricing``).

It lives in the order process: its book is the ledger's open paper orders (``restore``), and each
closed 1m candle (``on_candle``) may fill, trigger or expire them. Checks on arrival, each a ``rejected``
order with its reason: unknown symbol, no price, market closed (for an order that would have to fill
now; a resting limit or stop waits for the next session), insufficient funds or position (paper
accounts are cash accounts: long only). ``ioc``/``fok`` never rest. A volume cap (``Costs.volume_cap``)
limits what one candle's fills may take across every order: an arrival takes from the last closed
candle's volume, a resting order from the candle it fills on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Protocol

from tacore.trading.accounts import Accounts, Costs
from tacore.trading.instruments import Instruments
from tacore.trading.model import Liquidity, Order, OrderStatus, OrderType, Portfolio, Side, TimeInForce
from tacore.trading.model.market import Candle, Quote
from tacore.trading.model.money import ZERO, fmt, mul, mul_div
from tacore.trading.pricing import (
    arrival_limit_price,
    fee,
    market_price,
    reservation,
    resting_limit_price,
    stop_reached,
    stop_trigger_price,
)
from tacore.trading.venues.base import VenueBalance, VenueError, VenueErrorCode, VenueFill, VenueReport

#: A day order past its session end is expired by the clock this long after it (the session's last
#: candle usually expires it first: it arrives a moment after the close).
EXPIRY_GRACE_MS = 90_000
_KEEP_CANDLES = 8  # candles of taken volume remembered per symbol


class QuoteSource(Protocol):
    def quote(self, symbol: str) -> Quote | None:
        """The latest price of ``symbol`` (it may ask the data agent); None when there is none."""
        ...


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class VolumeBook:
    """Volume taken from each recent candle, so two orders never fill the same volume twice."""

    def __init__(self) -> None:
        self._taken: dict[str, dict[int, Decimal]] = {}

    def available(self, symbol: str, open_ms: int | None, volume: Decimal | None,
                  cap: Decimal | None) -> Decimal | None:
        """What fills may still take from that candle (None: no cap)."""
        if cap is None:
            return None
        if open_ms is None or volume is None:
            return ZERO
        taken = self._taken.get(symbol, {}).get(open_ms, ZERO)
        return max(ZERO, mul(volume, cap) - taken)

    def take(self, symbol: str, open_ms: int | None, qty: Decimal) -> None:
        if open_ms is None:
            return
        per_candle = self._taken.setdefault(symbol, {})
        per_candle[open_ms] = per_candle.get(open_ms, ZERO) + qty
        if len(per_candle) > _KEEP_CANDLES:
            for old in sorted(per_candle)[:-_KEEP_CANDLES]:
                del per_candle[old]


class PaperVenue:
    name = "paper"
    remote = False

    def __init__(self, accounts: Accounts, instruments: Instruments, portfolio: Portfolio, quotes: QuoteSource,
                 clock: Callable[[], int] = wall_clock_ms) -> None:
        self.accounts = accounts
        self.instruments = instruments
        self.portfolio = portfolio
        self.quotes = quotes
        self.clock = clock
        self.volumes = VolumeBook()
        self._book: dict[str, dict[str, Order]] = {}  # symbol -> order id -> order, in arrival order

    # -- the book -------------------------------------------------------------------------------------
    def restore(self, orders: list[Order]) -> None:
        self._book.clear()
        for order in sorted(orders, key=lambda o: o.created_ms):
            if order.venue == self.name and order.is_open:
                self._book.setdefault(order.symbol, {})[order.id] = order

    def resting(self, symbol: str | None = None) -> list[Order]:
        books = [self._book.get(symbol, {})] if symbol is not None else list(self._book.values())
        return [order for book in books for order in book.values()]

    def _rest(self, order: Order) -> None:
        self._book.setdefault(order.symbol, {})[order.id] = order

    def _drop(self, order: Order) -> None:
        book = self._book.get(order.symbol)
        if book is not None:
            book.pop(order.id, None)
            if not book:
                del self._book[order.symbol]

    # -- Venue ----------------------------------------------------------------------------------------
    def submit(self, order: Order) -> VenueReport:
        now = self.clock()
        costs = self.accounts.get(order.account).costs
        instrument = self.instruments.resolve(order.symbol)
        if instrument is None:
            return _report(order, OrderStatus.REJECTED, now,
                           reason=f"unknown symbol {order.symbol}: no market lists it")
        quote = self.quotes.quote(order.symbol)
        if quote is None:
            return _report(order, OrderStatus.REJECTED, now, reason=f"no price for {order.symbol}")
        is_open = instrument.market.calendar.is_open(now)
        if not is_open and (order.type is OrderType.MARKET or not order.time_in_force.rests):
            return _report(order, OrderStatus.REJECTED, now,
                           reason=f"market closed: {instrument.market.name} ({instrument.market.calendar_name}) "
                                  f"is not trading now")
        if order.side is Side.SELL:
            position = self.portfolio.peek_position(order.account, order.symbol)
            held = position.available_qty if position is not None else ZERO
            if held < order.qty:
                return _report(order, OrderStatus.REJECTED, now,
                               reason=f"insufficient position: {fmt(held)} {order.symbol} free to sell, "
                                      f"{fmt(order.qty)} asked (paper accounts are long only)")
        price, triggered = (None, False) if not is_open else _arrival_price(order, quote.price, costs)
        fills: list[VenueFill] = []
        if price is not None:
            budget = self.volumes.available(order.symbol, quote.candle_open_ms, quote.volume, costs.volume_cap)
            qty = order.qty if budget is None else min(order.qty, budget)
            if order.time_in_force is TimeInForce.FOK and qty < order.qty:
                return _report(order, OrderStatus.CANCELED, now, triggered=triggered,
                               reason=f"fok: only {fmt(qty)} of {fmt(order.qty)} could fill at once (volume cap)")
            if qty > 0:
                fills.append(_fill(qty, price, fee(mul(qty, price), costs.taker_fee_bps), Liquidity.TAKER, now))
        filled = sum((f.qty for f in fills), ZERO)
        rests = filled < order.qty and order.time_in_force.rests
        if order.side is Side.BUY:
            need = sum((mul(f.qty, f.price) + f.fee for f in fills), ZERO)
            if rests:
                need += reservation(order, costs, quote.price, remaining=order.remaining_qty - filled)
            balance = self.portfolio.peek_balance(order.account, order.quote_asset)
            free = balance.available if balance is not None else ZERO
            if need > free:
                return _report(order, OrderStatus.REJECTED, now,
                               reason=f"insufficient funds: {fmt(need)} {order.quote_asset} needed, "
                                      f"{fmt(free)} available")
        for f in fills:
            self.volumes.take(order.symbol, quote.candle_open_ms, f.qty)
        if filled == order.qty:
            return _report(order, OrderStatus.FILLED, now, fills, triggered=triggered)
        if not rests:
            why = "not marketable" if not fills else f"only {fmt(filled)} of {fmt(order.qty)} filled at once"
            return _report(order, OrderStatus.CANCELED, now, fills, triggered=triggered,
                           reason=f"{order.time_in_force}: {why}; the rest was canceled")
        self._rest(order)
        status = OrderStatus.PARTIALLY_FILLED if fills else OrderStatus.NEW
        return _report(order, status, now, fills, triggered=triggered)

    def cancel(self, order: Order) -> VenueReport:
        book = self._book.get(order.symbol, {})
        if order.id not in book:
            raise VenueError(VenueErrorCode.UNKNOWN_ORDER, f"order {order.client_order_id} is not open on paper")
        self._drop(order)
        return _report(order, OrderStatus.CANCELED, self.clock(), reason="canceled by request")

    def query(self, order: Order) -> VenueReport | None:
        """The paper book's view: an order resting here, else None (the ledger has the rest: the paper
        venue's answer always commits with the intent, so an order it answered is never left ``accepted``)."""
        if order.id in self._book.get(order.symbol, {}):
            return _report(order, order.status if order.status is not OrderStatus.ACCEPTED else OrderStatus.NEW,
                           self.clock())
        return None

    def open_orders(self, account: str) -> list[VenueReport]:
        now = self.clock()
        return [_report(o, o.status, now) for o in self.resting() if o.account == account]

    def balances(self, account: str) -> list[VenueBalance]:
        return [VenueBalance(b.asset, b.available, b.reserved)
                for (acct, _), b in sorted(self.portfolio.balances.items()) if acct == account]

    # -- SimulatedVenue -----------------------------------------------------------------------------
    def on_candle(self, candle: Candle) -> list[tuple[Order, VenueReport]]:
        results: list[tuple[Order, VenueReport]] = []
        extra_cash: dict[tuple[str, str], Decimal] = {}  # free cash this candle's fills used past reservations
        now = self.clock()
        for order in list(self._book.get(candle.symbol, {}).values()):
            if not order.is_open:
                self._drop(order)
                continue
            if order.market_ms > candle.open_ms:
                continue  # it arrived while this candle ran: it fills on a later one
            if order.expires_ms is not None and candle.open_ms >= order.expires_ms:
                self._drop(order)
                results.append((order, _report(order, OrderStatus.EXPIRED, now,
                                               reason="day order: its session ended")))
                continue
            report = self._evaluate(order, candle, now, extra_cash)
            if report is not None:
                results.append((order, report))
        return results

    def on_clock(self, now_ms: int) -> list[tuple[Order, VenueReport]]:
        results = []
        for order in self.resting():
            if order.expires_ms is not None and now_ms >= order.expires_ms + EXPIRY_GRACE_MS:
                self._drop(order)
                results.append((order, _report(order, OrderStatus.EXPIRED, now_ms,
                                               reason="day order: its session ended")))
        return results

    def _evaluate(self, order: Order, candle: Candle, now: int,
                  extra_cash: dict[tuple[str, str], Decimal]) -> VenueReport | None:
        costs = self.accounts.get(order.account).costs
        triggered = order.triggered
        price: Decimal | None
        liquidity = Liquidity.TAKER
        if order.type is OrderType.MARKET or (order.type is OrderType.STOP and triggered):
            price = market_price(order.side, candle.open, costs)  # a market order, or a stop already triggered
        elif order.type.has_stop and not triggered:
            assert order.stop_price is not None
            at = stop_trigger_price(order.side, order.stop_price, candle)
            if at is None:
                return None
            triggered = True
            price = market_price(order.side, at, costs)
            if order.type is OrderType.STOP_LIMIT:
                assert order.limit_price is not None
                within = price <= order.limit_price if order.side is Side.BUY else price >= order.limit_price
                price = price if within else None
        else:  # a limit, or a stop_limit triggered on an earlier candle
            assert order.limit_price is not None
            price = resting_limit_price(order.side, order.limit_price, candle)
            liquidity = Liquidity.MAKER
        if price is None:
            return _report(order, order.status, now, triggered=True) if triggered != order.triggered else None
        budget = self.volumes.available(candle.symbol, candle.open_ms, candle.volume, costs.volume_cap)
        qty = order.remaining_qty if budget is None else min(order.remaining_qty, budget)
        if qty <= 0:
            return _report(order, order.status, now, triggered=True) if triggered != order.triggered else None
        bps = costs.maker_fee_bps if liquidity is Liquidity.MAKER else costs.taker_fee_bps
        fill = _fill(qty, price, fee(mul(qty, price), bps), liquidity, now)
        if order.side is Side.BUY:
            need = mul(qty, price) + fill.fee
            share = order.reserved if qty == order.remaining_qty else mul_div(order.reserved, qty, order.remaining_qty)
            key = (order.account, order.quote_asset)
            balance = self.portfolio.peek_balance(*key)
            free = (balance.available if balance is not None else ZERO) - extra_cash.get(key, ZERO)
            over = max(ZERO, need - share)
            if over > free:
                self._drop(order)
                return _report(order, OrderStatus.CANCELED, now, triggered=triggered,
                               reason=f"insufficient funds at fill: {fmt(need)} {order.quote_asset} needed")
            extra_cash[key] = extra_cash.get(key, ZERO) + over
        self.volumes.take(candle.symbol, candle.open_ms, qty)
        done = order.filled_qty + qty == order.qty
        if done:
            self._drop(order)
        status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        return _report(order, status, now, [fill], triggered=triggered)


def _arrival_price(order: Order, last: Decimal, costs: Costs) -> tuple[Decimal | None, bool]:
    """(fill price on arrival or None to rest, whether a stop triggered)."""
    if order.type is OrderType.MARKET:
        return market_price(order.side, last, costs), False
    if order.type is OrderType.LIMIT:
        assert order.limit_price is not None
        return arrival_limit_price(order.side, order.limit_price, last, costs), False
    assert order.stop_price is not None
    if not stop_reached(order.side, order.stop_price, last):
        return None, False
    if order.type is OrderType.STOP:
        return market_price(order.side, last, costs), True
    assert order.limit_price is not None
    return arrival_limit_price(order.side, order.limit_price, last, costs), True


def _fill(qty: Decimal, price: Decimal, fee_amount: Decimal, liquidity: Liquidity, ts_ms: int) -> VenueFill:
    return VenueFill(os.urandom(12).hex(), qty, price, fee_amount, liquidity, ts_ms)


def _report(order: Order, status: OrderStatus, ts_ms: int, fills: list[VenueFill] | None = None, *,
            reason: str | None = None, triggered: bool = False) -> VenueReport:
    fills = fills or []
    filled = order.filled_qty + sum((f.qty for f in fills), ZERO)
    return VenueReport(order.client_order_id, status, ts_ms, venue_order_id=f"paper-{order.id}",
                       filled_qty=filled, fills=tuple(fills), reason=reason, triggered=triggered or order.triggered)
