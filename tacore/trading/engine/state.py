"""The order engine's state and its durability: what it holds in memory, loading it from the ledger, the
commit barrier, and the lock -- which is never held across a call to a remote venue.

Every entry point takes ``lock`` (the order process's Worker thread and its market thread share the
engine). A call that leaves the process (a remote venue: Binance) runs with the lock released
(``_unlocked``), its order marked *in flight* meanwhile: nothing else asks the venue about that order
or acts on it until the call's answer is applied (``_wait_settled``), so a slow exchange never holds up
an order on another venue, a candle, or a read. The paper venue lives in the process: its calls run
under the lock, and its answer commits with the intent.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from tacore.errors import InvalidParams, Unavailable
from tacore.trading.accounts import Accounts
from tacore.trading.instruments import Instruments
from tacore.trading.ledger import Ledger, LedgerUnavailable
from tacore.trading.model import Order, Portfolio
from tacore.trading.model.market import Candle, Quote
from tacore.trading.venues import SimulatedVenue, Venue
from tacore.trading.venues.paper import wall_clock_ms

log = logging.getLogger("tacore.orders")

#: default interval between two looks at the orders resting at a remote venue
REMOTE_POLL_MS = 5_000
#: how long an entry point waits for another thread's venue call on the same order to be answered
SETTLE_WAIT_S = 30.0


class Prices(Protocol):
    def quote(self, symbol: str) -> Quote | None: ...
    def peek(self, symbol: str) -> Quote | None: ...
    def on_candle(self, candle: Candle) -> None: ...


class EngineState:
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
        self._settled = threading.Condition(self.lock)  # notified when a venue call's answer was applied
        self._in_flight: set[str] = set()  # orders with a call to their remote venue under way
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

    # -- calls to a remote venue: outside the lock -------------------------------------------------------------
    @contextlib.contextmanager
    def _unlocked(self, *orders: Order) -> Iterator[None]:
        """Release the lock (held once, by an entry point) for a call to the remote venue of ``orders``
        (none of them in flight already); they are in flight until the lock is taken back. Held more than
        once (a caller's own ``with lock``), the lock stays held: slower, never wrong."""
        ids = {order.id for order in orders}
        self._in_flight |= ids
        self.lock.release()
        try:
            yield
        finally:
            self.lock.acquire()
            self._in_flight -= ids
            self._settled.notify_all()

    def _wait_settled(self, order: Order) -> bool:
        """With the lock held: wait until no other thread has a venue call under way for ``order``.
        False if one still has after ``SETTLE_WAIT_S``."""
        deadline = time.monotonic() + SETTLE_WAIT_S
        while order.id in self._in_flight:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._settled.wait(left)
        return True

    def _find_locked(self, account: str | None, order_id: str | None, client_order_id: str | None) -> Order:
        try:
            if order_id is not None:
                order = self._open.get(order_id) or self.ledger.get(order_id)
                if order is not None and account is not None and order.account != account:
                    order = None
            else:
                assert client_order_id is not None
                name = self.accounts.get(account).name
                order = self._open_keys.get((name, client_order_id)) or self.ledger.find(name, client_order_id)
        except LedgerUnavailable as exc:
            raise Unavailable(f"the order ledger is unavailable ({exc})") from None
        if order is None:
            what = f"id {order_id}" if order_id is not None else f"client_order_id {client_order_id}"
            raise InvalidParams(f"no order with {what}", details=[{
                "field": "order_id" if order_id is not None else "client_order_id", "message": "no such order"}])
        return self._live(order)

    def _live(self, order: Order) -> Order:
        """The engine's object for ``order`` now (a reload after a failed commit, while the lock was
        released for a venue call, replaced the objects of open orders)."""
        return self._open.get(order.id, order)

    def in_flight(self, order: Order) -> bool:
        return order.id in self._in_flight

    def open_orders(self) -> list[Order]:
        """The live open orders (call with ``lock`` held to act on them)."""
        with self.lock:
            return list(self._open.values())

    def open_count(self) -> int:
        return len(self._open)
