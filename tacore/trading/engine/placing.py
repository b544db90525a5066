"""Placing and canceling: intent -> venue -> record, one order per client order id.

``place`` claims the client order id and writes the intent (``accepted``) in the same transaction,
before the venue hears of the order: for a venue across the network the intent is committed first,
then the call runs with the engine's lock released (the order in flight); the paper venue lives in
this process, so its answer commits with the intent (a crash leaves both or neither). A client order
id seen before answers the order it names (the same payload; once any call still under way for it is
answered) or is a ``CONFLICT`` (another payload).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from tacore.errors import Conflict, InvalidParams, Unavailable
from tacore.trading.accounts import AccountConfig
from tacore.trading.engine.applying import Applying
from tacore.trading.instruments import Instrument
from tacore.trading.intents import OrderIntent, default_client_order_id
from tacore.trading.ledger import LedgerUnavailable
from tacore.trading.model import Order, OrderStatus, TimeInForce, new_id
from tacore.trading.venues import REFUSED_CODES, Venue, VenueError, VenueReport

log = logging.getLogger("tacore.orders")


@dataclass(frozen=True, slots=True)
class Placed:
    order: Order
    existing: bool  # the client order id named an order placed before: this is it


class Placing(Applying):
    def place(self, intent: OrderIntent) -> Placed:
        with self.lock:
            self._ready_locked()
            account = self._account_for(intent)
            venue = self.venues[account.name]
            client_order_id = (intent.client_order_id or default_client_order_id(intent.request_id)
                               or "t-" + new_id().replace("-", "")[:32])
            payload_hash = intent.payload_hash(account.name, venue.name)
            try:
                existing = self._open_keys.get((account.name, client_order_id)) or \
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
                return Placed(self._answer_existing(self._live(existing), venue), True)
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
            order = self._submit(order, venue)
            quote = self.prices.peek(order.symbol)  # the paper venue may just have asked for it
            if quote is not None and quote.ts_ms != order.market_ms and order.is_open:
                order.market_ms = quote.ts_ms
                order.expires_ms = _expiry(order, instrument, order.market_ms)
            return Placed(order, False)

    def _answer_existing(self, order: Order, venue: Venue) -> Order:
        """The order a repeated client order id names: once a call another thread has under way for it is
        answered, and asked of its remote venue if still ``accepted`` (its first call's outcome unknown)."""
        if order.status is OrderStatus.ACCEPTED and venue.remote and self._wait_settled(order):
            order = self._live(order)
            if order.status is OrderStatus.ACCEPTED:
                self._resolve_unknown(order, venue)
        return self._live(order)

    def _account_for(self, intent: OrderIntent) -> AccountConfig:
        if intent.account is None and intent.venue is not None:
            return self.accounts.for_venue(intent.venue)
        account = self.accounts.get(intent.account)
        if intent.venue is not None and intent.venue != account.venue:
            raise InvalidParams(f"account {account.name} trades on venue {account.venue}, not {intent.venue}",
                                details=[{"field": "venue", "message": f"account {account.name} uses {account.venue}"}])
        return account

    def _submit(self, order: Order, venue: Venue) -> Order:
        """Send ``order`` (lock held once; released while a remote venue answers) and record the outcome;
        returns the engine's object for the order."""
        try:
            if venue.remote:
                with self._unlocked(order):
                    report = venue.submit(order)
            else:
                report = venue.submit(order)
        except VenueError as exc:
            order = self._after_call(order)
            if exc.code in REFUSED_CODES or not exc.outcome_unknown:
                self._reject(order, f"{venue.name}: {exc}")
            else:
                log.warning("order %s (%s): %s; the venue may have it: reconciliation will ask", order.id,
                            order.client_order_id, exc)
                order.reason = f"venue outcome unknown: {exc}"
                self.ledger.touch(order)
            return order
        except Exception as exc:
            log.exception("order %s: venue %s failed", order.id, venue.name)
            order = self._after_call(order)
            if venue.remote:
                order.reason = f"venue outcome unknown: {type(exc).__name__}: {exc}"
                self.ledger.touch(order)
            else:
                self._reject(order, f"{venue.name} failed: {exc}")
            return order
        order = self._after_call(order)
        self.apply(order, report)
        return order

    def _after_call(self, order: Order) -> Order:
        """Back under the lock after a venue call: the engine's state (reloaded if a commit failed meanwhile)
        and its object for ``order``."""
        try:
            self._ready_locked()
        except Unavailable:
            raise Unavailable(f"order {order.id} ({order.client_order_id}) went to its venue, and the order "
                              "ledger became unavailable before the answer was recorded; the order stays "
                              "accepted and its venue is asked about it again: retry with the same request_id "
                              "for its state") from None
        return self._live(order)

    def _resolve_unknown(self, order: Order, venue: Venue) -> None:
        """An order still ``accepted`` at a remote venue, no call for it under way: ask the venue what became
        of it (lock held once; released while the venue answers)."""
        try:
            with self._unlocked(order):
                report = venue.query(order)
        except VenueError as exc:
            log.warning("order %s: cannot ask %s about it yet: %s", order.id, venue.name, exc)
            return
        order = self._live(order)
        if order.status is not OrderStatus.ACCEPTED:
            return
        if report is None:
            self._reject(order, "not received by the venue (the order process stopped, or the call failed, "
                                "before the venue had it); it was not sent again")
        else:
            self.apply(order, report)

    # -- canceling ---------------------------------------------------------------------------------------------
    def cancel(self, account: str | None, order_id: str | None, client_order_id: str | None) -> Order:
        with self.lock:
            self._ready_locked()
            order = self._find_locked(account, order_id, client_order_id)
            if not order.is_open:
                return order
            venue = self.venues[order.account]
            if not venue.remote:
                return self._cancel_here(order, venue)
            if not self._wait_settled(order):
                raise Unavailable(f"a call to {venue.name} about order {order.id} is still under way; retry the "
                                  "cancel shortly")
            order = self._live(order)
            if not order.is_open:
                return order
            order.request_cancel(self.clock())
            self.ledger.touch(order)
            self._flush_locked()
            report: VenueReport | None = None
            found: VenueReport | None = None
            error: VenueError | None = None
            with self._unlocked(order):
                try:
                    report = venue.cancel(order)
                except VenueError as exc:
                    error = exc
                    with contextlib.suppress(VenueError):
                        found = venue.query(order)
            order = self._after_call(order)
            if error is not None:
                log.warning("cancel of order %s at %s: %s", order.id, venue.name, error)
            answer = report if report is not None else found
            if answer is not None:
                self.apply(order, answer)
            return order

    def _cancel_here(self, order: Order, venue: Venue) -> Order:
        """Cancel at the venue that lives in this process (lock held)."""
        try:
            report = venue.cancel(order)
        except VenueError as exc:
            log.warning("cancel of order %s at %s: %s", order.id, venue.name, exc)
            found = None
            with contextlib.suppress(VenueError):
                found = venue.query(order)
            if found is not None:
                self.apply(order, found)
            else:
                order.cancel(self.clock(), "canceled by request")
                self._settle(order, order.updated_ms)
            return order
        self.apply(order, report)
        return order


def _expiry(order: Order, instrument: Instrument | None, now: int) -> int | None:
    """A day order's session end: the session running now, or the next one (crypto: the UTC day)."""
    if order.time_in_force is not TimeInForce.DAY or instrument is None:
        return None
    try:
        return instrument.market.calendar.next_session(now)[1]
    except ValueError:
        return None
