"""The simulated matching engine: orders filled against the simulator's own price path.

- A market order, and a limit order that is marketable when it arrives (a buy at or above the current
  price), fills at once and in full at the current price (the running 1m candle's close) as taker.
  IOC/FOK limits that are not marketable expire; a LIMIT_MAKER that is marketable is refused.
- Resting limits fill as the path crosses them, at their own price, as maker. The path is seen at
  its 5-second grid points and at each minute's high and low; each such point offers a share of the
  minute's volume, shared by the orders it crosses in the order they were placed, so a large order
  fills in parts (``PARTIALLY_FILLED``) over several points.
- Stops (``STOP_LOSS``, ``STOP_LOSS_LIMIT``) start to work when the path reaches their stop price; a
  stop-market then fills in full at the stop price as taker, a stop-limit fills the same way when its
  limit allows it and otherwise rests as a limit. A stop the current price has already reached is
  refused (``Order would trigger immediately.``).
- Commission (the account's maker or taker rate, 8 decimals) is taken from what the order receives:
  the base asset on a buy, the quote asset on a sell, as on Binance.

The engine is advanced to the simulated clock before every request (and by a background task), so
an order rests and fills while nobody asks.
"""

from __future__ import annotations

import itertools
import secrets
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from tacore.exchange_sim.candle import UNITS
from tacore.exchange_sim.intervals import MINUTE_MS
from tacore.exchange_sim.market import Market
from tacore.exchange_sim.minutes import GRID, GRID_MS
from tacore.exchange_sim.rest import BinanceError
from tacore.exchange_sim.spot.accounts import InsufficientBalance, SpotAccount
from tacore.exchange_sim.spot.orders import STOP_TYPES, SimOrder, Trade
from tacore.exchange_sim.spot.symbols import EIGHT, SymbolRules

ZERO = Decimal(0)
_UNIT = Decimal(UNITS)
_ID_CHARS = string.ascii_letters + string.digits
#: the longest span one advance walks (a simulator left idle for days catches up on its last day)
_MAX_CATCH_UP_MS = 24 * 60 * MINUTE_MS


def generated_client_id() -> str:
    """An id like the ones Binance makes up when none is sent (22 letters and digits)."""
    return "".join(secrets.choice(_ID_CHARS) for _ in range(22))


def _commission(amount: Decimal, rate: Decimal) -> Decimal:
    return (amount * rate).quantize(EIGHT)


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A checked ``POST /api/v3/order`` request."""

    symbol: str
    side: str
    type: str
    time_in_force: str | None
    qty: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    client_order_id: str


def rejected(msg: str) -> BinanceError:
    """A refusal from the matching engine: -2010 NEW_ORDER_REJECTED with its message."""
    return BinanceError(-2010, msg)


class SpotEngine:
    """Every order of every account, the open ones per symbol, and the trades."""

    def __init__(self, market: Market, clock: Callable[[], int], rules: Callable[[str], SymbolRules | None],
                 liquidity_share: Decimal = Decimal(1)) -> None:
        self.market = market
        self.clock = clock
        self.rules = rules
        self.liquidity_share = liquidity_share
        self._orders: dict[str, dict[int, SimOrder]] = {}  # symbol -> order id -> order
        self._open: dict[str, list[SimOrder]] = {}  # symbol -> open orders, in the order placed
        self._trades: dict[tuple[str, str], list[Trade]] = {}  # (api key, symbol) -> trades
        self._order_ids: dict[str, Iterator[int]] = {}
        self._trade_ids: dict[str, Iterator[int]] = {}
        self._evaluated: dict[str, int] = {}  # symbol -> simulated ms the book was evaluated up to
        self.counters = {"orders_placed": 0, "orders_rejected": 0, "orders_canceled": 0, "trades": 0}

    # -- prices ----------------------------------------------------------------------------------------
    def price(self, symbol: str, now: int | None = None) -> Decimal:
        """The current price: the running 1m candle's close on the simulated clock."""
        at = self.clock() if now is None else now
        return Decimal(self.market.open_candle(symbol, "1m", at).close) / _UNIT

    # -- placing ----------------------------------------------------------------------------------------
    def place(self, account: SpotAccount, req: NewOrder, rules: SymbolRules) -> tuple[SimOrder, list[Trade]]:
        """Place ``req``: the order and the trades it made on arrival. Raises -2010 refusals."""
        now = self.clock()
        self.advance(now)
        book = self._open.setdefault(req.symbol, [])
        if any(o.client_order_id == req.client_order_id and o.account is account for o in book):
            self.counters["orders_rejected"] += 1
            raise rejected("Duplicate order sent.")
        current = self.price(req.symbol, now)
        stop = req.stop_price
        # (the API made sure stops have a stop price)
        if req.type in STOP_TYPES and stop is not None and (
                (req.side == "BUY" and current >= stop) or (req.side == "SELL" and current <= stop)):
            self.counters["orders_rejected"] += 1
            raise rejected("Order would trigger immediately.")
        marketable = req.type == "MARKET" or (
            req.price is not None and req.type in ("LIMIT", "LIMIT_MAKER")
            and (current <= req.price if req.side == "BUY" else current >= req.price))
        if req.type == "LIMIT_MAKER" and marketable:
            self.counters["orders_rejected"] += 1
            raise rejected("Order would immediately match and take.")
        order = SimOrder(req.symbol, self._next_order_id(req.symbol), req.client_order_id, account, req.side,
                         req.type, req.time_in_force or "GTC", req.qty, req.price, req.stop_price, now,
                         update_time=now, working=req.type not in STOP_TYPES,
                         working_time=-1 if req.type in STOP_TYPES else now)
        try:
            self._lock(order, rules, current)
        except InsufficientBalance:
            self.counters["orders_rejected"] += 1
            raise rejected("Account has insufficient balance for requested action.") from None
        self.counters["orders_placed"] += 1
        self._orders.setdefault(req.symbol, {})[order.order_id] = order
        fills: list[Trade] = []
        if marketable:
            fills.append(self._fill(order, rules, order.qty, current, maker=False, now=now))
        elif order.time_in_force in ("IOC", "FOK") and order.type == "LIMIT":
            self._finish(order, "EXPIRED", now)
        if order.is_open:
            if not book:
                self._evaluated[req.symbol] = now
            book.append(order)
        account.update_time = now
        return order, fills

    def _lock(self, order: SimOrder, rules: SymbolRules, current: Decimal) -> None:
        account = order.account
        if order.side == "SELL":
            order.locked_asset, order.locked = rules.base, order.qty
            account.lock(rules.base, order.qty)
            return
        order.locked_asset = rules.quote
        if order.type == "MARKET":
            if order.qty * current > account.free(rules.quote):
                raise InsufficientBalance(rules.quote)
            return  # fills at once from the free balance
        lock_price = order.price if order.price is not None else order.stop_price
        if lock_price is None:  # the API made sure every other type has a price or a stop price
            raise InsufficientBalance(rules.quote)
        order.lock_price = lock_price
        order.locked = order.qty * lock_price
        account.lock(rules.quote, order.locked)

    # -- filling ------------------------------------------------------------------------------------------
    def _fill(self, order: SimOrder, rules: SymbolRules, qty: Decimal, price: Decimal, *, maker: bool,
              now: int) -> Trade:
        account = order.account
        quote_qty = qty * price
        rate = account.maker_rate if maker else account.taker_rate
        if order.side == "BUY":
            if order.type == "MARKET":
                account.spend_free(rules.quote, quote_qty)
            else:
                reserved = qty * order.lock_price
                account.spend_locked(rules.quote, reserved)
                order.locked -= reserved
                account.credit(rules.quote, reserved - quote_qty)
            commission, asset = _commission(qty, rate), rules.base
            account.credit(rules.base, qty - commission)
        else:
            account.spend_locked(rules.base, qty)
            order.locked -= qty
            commission, asset = _commission(quote_qty, rate), rules.quote
            account.credit(rules.quote, quote_qty - commission)
        trade = Trade(next(self._trade_ids.setdefault(order.symbol, itertools.count(1))), order.order_id,
                      order.symbol, price, qty, quote_qty, commission, asset, now, order.side == "BUY", maker)
        order.trades.append(trade)
        self._trades.setdefault((account.api_key, order.symbol), []).append(trade)
        self.counters["trades"] += 1
        order.executed += qty
        order.cum_quote += quote_qty
        order.update_time = now
        account.update_time = now
        order.status = "FILLED" if order.executed == order.qty else "PARTIALLY_FILLED"
        if order.status == "FILLED":
            self._release(order)
        return trade

    def _release(self, order: SimOrder) -> None:
        if order.locked:
            order.account.unlock(order.locked_asset, order.locked)
            order.locked = ZERO

    def _finish(self, order: SimOrder, status: str, now: int) -> None:
        order.status = status
        order.update_time = now
        order.account.update_time = now
        self._release(order)

    # -- the path -----------------------------------------------------------------------------------------
    def advance(self, now: int | None = None) -> int:
        """Evaluate every resting order against the path up to ``now``; returns the trades made."""
        at = self.clock() if now is None else now
        made = 0
        for symbol, book in self._open.items():
            if not book:
                continue
            since = max(self._evaluated.get(symbol, at), at - _MAX_CATCH_UP_MS)
            if at <= since:
                continue
            rules = self.rules(symbol)
            if rules is None:
                continue
            for t, price, liquidity in self.path_points(symbol, since, at):
                made += self._at_point(book, rules, t, price, liquidity)
            self._evaluated[symbol] = at
            book[:] = [o for o in book if o.is_open]
        return made

    def path_points(self, symbol: str, since: int, until: int) -> Iterator[tuple[int, Decimal, Decimal]]:
        """(time, price, quantity offered) of each point of the path in (since, until], in time order."""
        prof = self.market.profile(symbol)
        lot = Decimal(prof.lot) / _UNIT
        for minute in range(since // MINUTE_MS, until // MINUTE_MS + 1):
            detail = self.market.minute_detail(symbol, minute)
            start = minute * MINUTE_MS
            final = detail.final
            offered = (Decimal(final.volume) / _UNIT * self.liquidity_share / (GRID + 2)).quantize(
                lot, rounding=ROUND_DOWN)
            offered = max(offered, lot)
            points = [(start + j * GRID_MS, detail.path[j]) for j in range(1, GRID + 1)]
            points += [(start + detail.tau_high_ms, final.high), (start + detail.tau_low_ms, final.low)]
            for t, units in sorted(points):
                if since < t <= until:
                    yield t, Decimal(units) / _UNIT, offered

    def _at_point(self, book: list[SimOrder], rules: SymbolRules, t: int, price: Decimal, offered: Decimal) -> int:
        made = 0
        for order in book:
            if not order.is_open:
                continue
            stop = order.stop_price
            if not order.working and stop is not None:
                if (order.side == "BUY" and price >= stop) or (order.side == "SELL" and price <= stop):
                    order.working, order.working_time, order.update_time = True, t, t
                    limit = order.price
                    if order.type == "STOP_LOSS" or (
                            limit is not None and (limit >= stop if order.side == "BUY" else limit <= stop)):
                        self._fill(order, rules, order.remaining, stop, maker=False, now=t)
                        made += 1
                continue
            limit = order.price
            if limit is None or offered <= 0:
                continue
            if (order.side == "BUY" and price <= limit) or (order.side == "SELL" and price >= limit):
                qty = min(order.remaining, offered)
                offered -= qty
                self._fill(order, rules, qty, limit, maker=True, now=t)
                made += 1
        return made

    # -- asking and canceling --------------------------------------------------------------------------------
    def find(self, account: SpotAccount, symbol: str, order_id: int | None, client_id: str | None) -> SimOrder | None:
        """An order of ``account`` by id, or its newest with ``client_id``; with both, they must agree."""
        orders = self._orders.get(symbol, {})
        if order_id is not None:
            found = orders.get(order_id)
            if found is None or found.account is not account:
                return None
            if client_id is not None and found.client_order_id != client_id:
                return None
            return found
        for order in reversed(list(orders.values())):
            if order.account is account and order.client_order_id == client_id:
                return order
        return None

    def cancel(self, order: SimOrder) -> None:
        """Cancel an open order (the caller checked it is open)."""
        now = self.clock()
        self._finish(order, "CANCELED", now)
        self.counters["orders_canceled"] += 1
        book = self._open.get(order.symbol, [])
        if order in book:
            book.remove(order)

    def open_orders(self, account: SpotAccount, symbol: str | None) -> list[SimOrder]:
        symbols = [symbol] if symbol is not None else sorted(self._open)
        return [o for s in symbols for o in self._open.get(s, []) if o.account is account and o.is_open]

    def orders_of(self, account: SpotAccount) -> list[SimOrder]:
        """Every order ``account`` placed, oldest first."""
        found = [o for orders in self._orders.values() for o in orders.values() if o.account is account]
        return sorted(found, key=lambda o: (o.time, o.symbol, o.order_id))

    def trades(self, account: SpotAccount, symbol: str) -> list[Trade]:
        return self._trades.get((account.api_key, symbol), [])

    def _next_order_id(self, symbol: str) -> int:
        return next(self._order_ids.setdefault(symbol, itertools.count(1)))

    def stats(self) -> dict[str, int]:
        return {**self.counters, "open_orders": sum(len(b) for b in self._open.values())}
