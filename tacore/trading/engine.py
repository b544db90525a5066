"""The order engine: intent -> venue -> record, for every account, as the ledger's single writer.

``place`` claims the client order id and writes the intent (``accepted``) in the same transaction,
before the venue hears of the order: for a venue across the network the intent is committed first;
the paper venue lives in this process, so its answer commits with the intent (a crash leaves both or
neither). A client order id seen before answers the order it names (the same payload) or is a
``CONFLICT`` (another payload). Changes are staged and made durable by ``commit`` -- the worker
runtime calls it before it sends the replies of a batch (group commit). A failed commit reloads the
engine's state from the ledger and makes the next ``commit`` fail too, so no reply promises an effect
that was lost. Every entry point takes one lock: the Worker thread and the candle thread share it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from tacore.errors import Conflict, InvalidParams, Unavailable
from tacore.trading import pricing
from tacore.trading.accounts import AccountConfig, Accounts
from tacore.trading.instruments import Instrument, Instruments
from tacore.trading.intents import OrderIntent, default_client_order_id
from tacore.trading.ledger import Ledger, LedgerUnavailable, OrderQuery
from tacore.trading.model import (
    Balance,
    Fill,
    Order,
    OrderStatus,
    Portfolio,
    Position,
    TimeInForce,
    new_id,
)
from tacore.trading.model.market import Candle, Quote
from tacore.trading.venues import REFUSED_CODES, SimulatedVenue, Venue, VenueError, VenueReport
from tacore.trading.venues.paper import wall_clock_ms

log = logging.getLogger("tacore.orders")

CANDLE_INTERVAL = "1m"
#: default interval between two looks at the orders resting at a remote venue
REMOTE_POLL_MS = 5_000


class Prices(Protocol):
    def quote(self, symbol: str) -> Quote | None: ...
    def peek(self, symbol: str) -> Quote | None: ...
    def on_candle(self, candle: Candle) -> None: ...


@dataclass(frozen=True, slots=True)
class Placed:
    order: Order
    existing: bool  # the client order id named an order placed before: this is it


class OrderEngine:
    def __init__(self, ledger: Ledger, accounts: Accounts, instruments: Instruments, prices: Prices,
                 portfolio: Portfolio, venues: dict[str, Venue], *, clock: Callable[[], int] = wall_clock_ms,
                 remote_poll_ms: int = REMOTE_POLL_MS) -> None:
        self.ledger = ledger
        self.accounts = accounts
        self.instruments = instruments
        self.prices = prices
        self.portfolio = portfolio  # the venues hold this same object
        self.venues = venues  # account -> venue
        self.clock = clock
        self.lock = threading.RLock()
        self._open: dict[str, Order] = {}  # the live objects of open orders (the paper book holds the same)
        self._open_keys: dict[tuple[str, str], Order] = {}  # (account, client_order_id) of open orders
        self._fill_ids: dict[str, set[str]] = {}  # venue fill ids recorded per open order
        self._marks: dict[str, int] = {}  # newest 1m candle evaluated per symbol
        self._lost = False  # a commit failed since the last barrier: staged replies may promise lost effects
        self._stale = False  # the reload after a failed commit failed too: reload before anything else
        #: how often the orders resting at a remote venue are asked for (fills while nobody calls)
        self.remote_poll_ms = remote_poll_ms
        self._polled: dict[str, int] = {}  # account -> when its remote venue's open orders were last asked for

    # -- start-up -----------------------------------------------------------------------------------------
    def load(self) -> None:
        """Read the ledger (balances, positions, open orders, candle marks), deposit what new accounts
        start with, and hand each simulated venue its open orders. Reconciliation comes next."""
        with self.lock:
            self._reload_locked()
            now = self.clock()
            for account in self.accounts:
                for asset, amount in account.balances.items():
                    if self.portfolio.peek_balance(account.name, asset) is None:
                        self.portfolio.deposit(account.name, asset, amount, now)
            self._flush_locked()

    def _reload_locked(self) -> None:
        self.ledger.discard()
        self.portfolio.replace_with(self.ledger.load_portfolio())
        opened = self.ledger.open_orders()
        self._open = {order.id: order for order in opened}
        self._open_keys = {(order.account, order.client_order_id): order for order in opened}
        recorded = self.ledger.fills_of([o.id for o in opened])
        self._fill_ids = {oid: {f.venue_fill_id for f in found} for oid, found in recorded.items()}
        self._marks = self.ledger.marks()
        for venue in self._distinct_venues():
            if isinstance(venue, SimulatedVenue):
                venue.restore([o for o in opened if self.venues.get(o.account) is venue])
        self._stale = False

    def _distinct_venues(self) -> list[Venue]:
        seen: dict[int, Venue] = {}
        for venue in self.venues.values():
            seen.setdefault(id(venue), venue)
        return list(seen.values())

    def _ready_locked(self) -> None:
        if self._stale:
            try:
                self._reload_locked()
            except LedgerUnavailable as exc:
                raise Unavailable(f"the order ledger is unavailable ({exc}); nothing was done") from None

    # -- durability (the worker runtime's commit barrier) ----------------------------------------------------
    def commit(self) -> None:
        """Make every staged change durable. Raises ``Unavailable`` when it could not, or when an earlier
        commit failed since the last call (the replies waiting on this one may promise lost effects)."""
        with self.lock:
            try:
                self._flush_locked()
            except Unavailable:
                self._lost = False  # this failure is the one the caller hears of
                raise
            if self._lost:
                self._lost = False
                raise Unavailable("the order ledger failed to record an earlier change; its effects were "
                                  "undone: retry with the same request_id")

    def _flush_locked(self) -> None:
        try:
            self.ledger.commit(self.portfolio)
        except LedgerUnavailable as exc:
            self._lost = True
            log.error("order ledger commit failed; reloading the last committed state: %s", exc)
            try:
                self._reload_locked()
            except LedgerUnavailable:
                self._stale = True
            raise Unavailable(f"the order ledger is unavailable ({exc}); nothing was recorded") from None

    def flush(self) -> None:
        """Commit now (reads do, so they see every order whose reply may have been sent)."""
        with self.lock:
            self._ready_locked()
            self._flush_locked()

    # -- placing ---------------------------------------------------------------------------------------------
    def place(self, intent: OrderIntent) -> Placed:
        with self.lock:
            self._ready_locked()
            account = self._account_for(intent)
            venue = self.venues[account.name]
            client_order_id = (intent.client_order_id or default_client_order_id(intent.request_id)
                               or "t-" + new_id().replace("-", "")[:32])
            payload_hash = intent.payload_hash(account.name, venue.name)
            try:
                existing = self._open_by_client_id(account.name, client_order_id) or \
                    self.ledger.find(account.name, client_order_id)
            except LedgerUnavailable as exc:
                raise Unavailable(f"the order ledger is unavailable ({exc}); nothing was placed") from None
            if existing is not None:
                if existing.payload_hash != payload_hash:
                    raise Conflict(
                        f"client_order_id {client_order_id!r} already names order {existing.id} in account "
                        f"{account.name} with another payload ({existing.side} {existing.qty} {existing.symbol} "
                        f"{existing.type}); use a new client_order_id (or request_id)",
                        details={"client_order_id": client_order_id, "order_id": existing.id,
                                 "account": account.name})
                live = self._open.get(existing.id, existing)
                if live.status is OrderStatus.ACCEPTED and venue.remote:
                    self.resolve_unknown(live, venue)
                return Placed(live, True)
            now = self.clock()
            instrument = self.instruments.resolve(intent.symbol)
            order = Order.accept(
                account=account.name, client_order_id=client_order_id, venue=venue.name, symbol=intent.symbol,
                asset_class=instrument.asset_class if instrument else "unknown",
                quote_asset=instrument.quote_asset if instrument else "", side=intent.side, type=intent.type,
                time_in_force=intent.time_in_force, qty=intent.qty, limit_price=intent.limit_price,
                stop_price=intent.stop_price, payload_hash=payload_hash, request_id=intent.request_id, ts_ms=now)
            self.ledger.add(order)
            self._open[order.id] = order
            self._open_keys[(order.account, order.client_order_id)] = order
            self._fill_ids[order.id] = set()
            if instrument is None:
                self._reject(order, f"unknown symbol {intent.symbol}: no market lists it")
                return Placed(order, False)
            quote = self.prices.peek(order.symbol)
            order.market_ms = quote.ts_ms if quote is not None else now
            order.expires_ms = _expiry(order, instrument, order.market_ms)
            if venue.remote:
                self._flush_locked()  # the intent is durable before the venue hears of the order
            self._submit(order, venue)
            quote = self.prices.peek(order.symbol)  # the paper venue may just have asked for it
            if quote is not None and quote.ts_ms != order.market_ms and order.is_open:
                order.market_ms = quote.ts_ms
                order.expires_ms = _expiry(order, instrument, order.market_ms)
            return Placed(order, False)

    def _account_for(self, intent: OrderIntent) -> AccountConfig:
        if intent.account is None and intent.venue is not None:
            return self.accounts.for_venue(intent.venue)
        account = self.accounts.get(intent.account)
        if intent.venue is not None and intent.venue != account.venue:
            raise InvalidParams(f"account {account.name} trades on venue {account.venue}, not {intent.venue}",
                                details=[{"field": "venue", "message": f"account {account.name} uses {account.venue}"}])
        return account

    def _open_by_client_id(self, account: str, client_order_id: str) -> Order | None:
        return self._open_keys.get((account, client_order_id))

    def _submit(self, order: Order, venue: Venue) -> None:
        try:
            report = venue.submit(order)
        except VenueError as exc:
            if exc.code in REFUSED_CODES or not exc.outcome_unknown:
                self._reject(order, f"{venue.name}: {exc}")
            else:
                log.warning("order %s (%s): %s; the venue may have it: reconciliation will ask", order.id,
                            order.client_order_id, exc)
                order.reason = f"venue outcome unknown: {exc}"
                self.ledger.touch(order)
            return
        except Exception as exc:
            log.exception("order %s: venue %s failed", order.id, venue.name)
            if venue.remote:
                order.reason = f"venue outcome unknown: {type(exc).__name__}: {exc}"
                self.ledger.touch(order)
            else:
                self._reject(order, f"{venue.name} failed: {exc}")
            return
        self.apply(order, report)

    def resolve_unknown(self, order: Order, venue: Venue) -> None:
        """An order still ``accepted`` at a remote venue: ask it what became of the order."""
        try:
            report = venue.query(order)
        except VenueError as exc:
            log.warning("order %s: cannot ask %s about it yet: %s", order.id, venue.name, exc)
            return
        if report is None:
            self._reject(order, "not received by the venue (the order process stopped, or the call failed, "
                                "before the venue had it); it was not sent again")
        else:
            self.apply(order, report)

    # -- applying what a venue says ------------------------------------------------------------------------
    def apply(self, order: Order, report: VenueReport) -> None:
        """Bring ``order`` (and the portfolio) to what the venue reports; stage the changes."""
        if order.status.terminal:
            return
        ts = report.ts_ms or self.clock()
        if report.status is OrderStatus.REJECTED and not report.fills and order.filled_qty == 0:
            self._reject(order, report.reason or "rejected by the venue", ts)
            return
        if order.status is OrderStatus.ACCEPTED:
            order.acknowledge(ts, report.venue_order_id)
        elif report.venue_order_id is not None:
            order.venue_order_id = report.venue_order_id
        if report.triggered and order.type.has_stop and not order.triggered:
            assert order.stop_price is not None
            order.trigger(ts, order.stop_price)
        seen = self._fill_ids.setdefault(order.id, set())
        for venue_fill in report.fills:
            if venue_fill.fill_id in seen:
                continue
            seen.add(venue_fill.fill_id)
            fill = Fill(new_id(), order.id, order.account, order.symbol, order.side, venue_fill.qty, venue_fill.price,
                        venue_fill.fee, order.quote_asset, venue_fill.liquidity, venue_fill.ts_ms or ts,
                        venue_fill.fill_id)
            self.portfolio.apply_fill(order, fill)
            self.ledger.add_fill(fill)
        if order.filled_qty != report.filled_qty and report.filled_qty:
            log.error("order %s: %s reports %s filled, the fills it gave add up to %s", order.id, order.venue,
                      report.filled_qty, order.filled_qty)
        if order.is_open:
            if report.status is OrderStatus.CANCELED:
                order.cancel(ts, report.reason or "canceled")
            elif report.status is OrderStatus.EXPIRED:
                order.expire(ts, report.reason or "expired")
            elif report.status is OrderStatus.REJECTED:
                order.cancel(ts, report.reason or "rejected by the venue after a partial fill")
            elif report.status is OrderStatus.PENDING_CANCEL:
                order.request_cancel(ts)
        self._settle(order, ts)

    def _reject(self, order: Order, reason: str, ts: int | None = None) -> None:
        order.reject(self.clock() if ts is None else ts, reason)
        self._settle(order, order.updated_ms)

    def _settle(self, order: Order, ts: int) -> None:
        """Bring the order's reservation to what it still needs; forget it once it ended."""
        if order.is_open:
            account = self.accounts.get(order.account)
            quote = self.prices.peek(order.symbol)
            target = pricing.reservation(order, account.costs, quote.price if quote else None)
            if target > order.reserved:  # never more than is free: the venue checked what it needs
                free = self._free(order)
                self.portfolio.reserve(order, min(target - order.reserved, max(free, Decimal(0))), ts)
            elif target < order.reserved:
                self.portfolio.release(order, order.reserved - target, ts)
        else:
            self.portfolio.finish(order, ts)
            self._open.pop(order.id, None)
            self._open_keys.pop((order.account, order.client_order_id), None)
            self._fill_ids.pop(order.id, None)
        self.ledger.touch(order)

    def _free(self, order: Order) -> Decimal:
        if order.side.value == "buy":
            balance = self.portfolio.peek_balance(order.account, order.quote_asset)
            return balance.available if balance is not None else Decimal(0)
        position = self.portfolio.peek_position(order.account, order.symbol)
        return position.available_qty if position is not None else Decimal(0)

    # -- canceling ---------------------------------------------------------------------------------------------
    def cancel(self, account: str | None, order_id: str | None, client_order_id: str | None) -> Order:
        with self.lock:
            self._ready_locked()
            order = self._find_locked(account, order_id, client_order_id)
            if not order.is_open:
                return order
            venue = self.venues[order.account]
            if venue.remote:
                order.request_cancel(self.clock())
                self.ledger.touch(order)
                self._flush_locked()
            try:
                report = venue.cancel(order)
            except VenueError as exc:
                log.warning("cancel of order %s at %s: %s", order.id, venue.name, exc)
                found = None
                with contextlib.suppress(VenueError):
                    found = venue.query(order)
                if found is not None:
                    self.apply(order, found)
                elif not venue.remote:
                    order.cancel(self.clock(), "canceled by request")
                    self._settle(order, order.updated_ms)
                return order
            self.apply(order, report)
            return order

    # -- market data and time -------------------------------------------------------------------------------------
    def needs_candles(self) -> dict[str, int]:
        """Symbols with orders resting on a simulated venue -> the first 1m candle open time still to evaluate."""
        with self.lock:
            wanted: dict[str, int] = {}
            for order in self._open.values():
                if isinstance(self.venues.get(order.account), SimulatedVenue):
                    start = _next_minute(order.market_ms)
                    mark = self._marks.get(order.symbol)
                    if mark is not None:
                        start = max(start, mark + 60_000)
                    wanted[order.symbol] = min(wanted.get(order.symbol, start), start)
            return wanted

    def on_candle(self, candle: Candle) -> int:
        """A closed candle: the resting orders it fills, triggers or expires. Returns the orders it changed."""
        if candle.interval != CANDLE_INTERVAL:
            return 0
        self.prices.on_candle(candle)
        with self.lock:
            self._ready_locked()
            mark = self._marks.get(candle.symbol)
            if mark is not None and candle.open_ms <= mark:
                return 0  # evaluated already (a repeated event, or history caught up past it)
            changed = 0
            resting = False
            for venue in self._distinct_venues():
                if not isinstance(venue, SimulatedVenue):
                    continue
                resting = resting or any(o.symbol == candle.symbol for o in self._open.values()
                                         if self.venues.get(o.account) is venue)
                for order, report in venue.on_candle(candle):
                    self.apply(order, report)
                    changed += 1
            if resting:
                self._marks[candle.symbol] = candle.open_ms
                self.ledger.set_mark(candle.symbol, candle.open_ms)
            if self.ledger.pending:
                self._flush_locked()
            return changed

    def on_clock(self) -> int:
        """Time passing: day orders past their session, remote orders whose outcome is unknown, and (every
        ``remote_poll_ms``) what became of the orders resting at a remote venue."""
        with self.lock:
            self._ready_locked()
            now = self.clock()
            changed = 0
            for venue in self._distinct_venues():
                if isinstance(venue, SimulatedVenue):
                    for order, report in venue.on_clock(now):
                        self.apply(order, report)
                        changed += 1
            for order in list(self._open.values()):
                venue = self.venues[order.account]
                if venue.remote and order.status is OrderStatus.ACCEPTED:
                    self.resolve_unknown(order, venue)
                    changed += 1
            changed += self._poll_remote_locked(now)
            if self.ledger.pending:
                self._flush_locked()
            return changed

    def _poll_remote_locked(self, now: int) -> int:
        """Ask each remote venue holding open orders for its open orders (one call per account); an order
        no longer among them is asked for by client order id (filled, canceled or expired meanwhile).
        Returns the orders whose status or filled quantity changed."""
        resting: dict[str, list[Order]] = {}
        for order in self._open.values():
            venue = self.venues.get(order.account)
            if venue is not None and venue.remote and order.status is not OrderStatus.ACCEPTED:
                resting.setdefault(order.account, []).append(order)
        changed = 0
        for account, waiting in resting.items():
            if now < self._polled.get(account, 0) + self.remote_poll_ms:
                continue
            self._polled[account] = now
            venue = self.venues[account]
            try:
                reports = {r.client_order_id: r for r in venue.open_orders(account)}
            except VenueError as exc:
                log.warning("open orders of account %s at %s: %s; asking again later", account, venue.name, exc)
                continue
            for order in waiting:
                report = reports.get(order.client_order_id)
                if report is None:
                    try:
                        report = venue.query(order)
                    except VenueError as exc:
                        log.warning("order %s (%s) at %s: %s; asking again later", order.id, order.client_order_id,
                                    venue.name, exc)
                        continue
                    if report is None:
                        log.error("order %s (%s) is %s here but %s does not know it", order.id,
                                  order.client_order_id, order.status, venue.name)
                        continue
                if report.status is order.status and report.filled_qty == order.filled_qty:
                    continue
                self.apply(order, report)
                changed += 1
        return changed

    def open_orders(self) -> list[Order]:
        """The live open orders (call with ``lock`` held to act on them)."""
        with self.lock:
            return list(self._open.values())

    def reject_unsent(self, order: Order, reason: str) -> None:
        """Reject an order still ``accepted`` that its venue never received (reconciliation)."""
        with self.lock:
            self._reject(order, reason)

    # -- reads ---------------------------------------------------------------------------------------------------
    def find(self, account: str | None, order_id: str | None, client_order_id: str | None) -> Order:
        with self.lock:
            self._ready_locked()
            self._flush_locked()
            return self._find_locked(account, order_id, client_order_id)

    def _find_locked(self, account: str | None, order_id: str | None, client_order_id: str | None) -> Order:
        try:
            if order_id is not None:
                order = self._open.get(order_id) or self.ledger.get(order_id)
                if order is not None and account is not None and order.account != account:
                    order = None
            else:
                assert client_order_id is not None
                name = self.accounts.get(account).name
                order = self._open_by_client_id(name, client_order_id) or self.ledger.find(name, client_order_id)
        except LedgerUnavailable as exc:
            raise Unavailable(f"the order ledger is unavailable ({exc})") from None
        if order is None:
            what = f"id {order_id}" if order_id is not None else f"client_order_id {client_order_id}"
            raise InvalidParams(f"no order with {what}", details=[{
                "field": "order_id" if order_id is not None else "client_order_id", "message": "no such order"}])
        return self._open.get(order.id, order)

    def list_orders(self, query: OrderQuery) -> tuple[list[Order], str | None]:
        with self.lock:
            self._ready_locked()
            self._flush_locked()
            try:
                page, cursor = self.ledger.list_orders(query)
            except LedgerUnavailable as exc:
                raise Unavailable(f"the order ledger is unavailable ({exc})") from None
            return [self._open.get(o.id, o) for o in page], cursor

    def fills_of(self, order_ids: Iterable[str]) -> dict[str, list[Fill]]:
        with self.lock:
            try:
                return self.ledger.fills_of(list(order_ids))
            except LedgerUnavailable as exc:
                raise Unavailable(f"the order ledger is unavailable ({exc})") from None

    def positions(self, account: str | None) -> list[Position]:
        with self.lock:
            self._ready_locked()
            return [p for (acct, _), p in sorted(self.portfolio.positions.items())
                    if account is None or acct == account]

    def balances(self, account: str | None) -> list[Balance]:
        with self.lock:
            self._ready_locked()
            return [b for (acct, _), b in sorted(self.portfolio.balances.items())
                    if account is None or acct == account]

    def open_count(self) -> int:
        return len(self._open)


def _next_minute(ts_ms: int) -> int:
    return ts_ms if ts_ms % 60_000 == 0 else ts_ms - ts_ms % 60_000 + 60_000


def _expiry(order: Order, instrument: Instrument | None, now: int) -> int | None:
    """A day order's session end: the session running now, or the next one (crypto: the UTC day)."""
    if order.time_in_force is not TimeInForce.DAY or instrument is None:
        return None
    try:
        return instrument.market.calendar.next_session(now)[1]
    except ValueError:
        return None


def quote_value(position: Position, quote: Quote | None) -> tuple[Decimal | None, Decimal | None]:
    """(market value, unrealised P&L) of ``position`` at ``quote``'s price; None without a price."""
    from tacore.trading.model.money import mul

    if quote is None:
        return None, None
    value = mul(position.qty, quote.price)
    return value, value - position.cost_basis
