"""Bringing an order, and the portfolio, to what its venue reports: acknowledgements, fills (recorded
once per venue fill id), the end states, and the reservation an open order still needs."""

from __future__ import annotations

import logging
from decimal import Decimal

from tacore.trading import pricing
from tacore.trading.engine.state import EngineState
from tacore.trading.model import Fill, Order, OrderStatus, new_id
from tacore.trading.venues import VenueReport

log = logging.getLogger("tacore.orders")


class Applying(EngineState):
    def apply(self, order: Order, report: VenueReport) -> None:
        """Bring ``order`` (and the portfolio) to what the venue reports; stage the changes. Lock held."""
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

    def apply_report(self, order: Order, report: VenueReport) -> bool:
        """``apply`` under the lock, to the engine's object for ``order`` (reconciliation); True when its
        status or filled quantity changed."""
        with self.lock:
            live = self._live(order)
            before = (live.status, live.filled_qty)
            self.apply(live, report)
            return (live.status, live.filled_qty) != before

    def reject_unsent(self, order: Order, reason: str) -> None:
        """Reject an order still ``accepted`` that its venue never received (reconciliation)."""
        with self.lock:
            self._reject(self._live(order), reason)

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
