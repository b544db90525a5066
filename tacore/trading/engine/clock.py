"""Market data and time: closed candles fill, trigger or expire the orders resting on the paper venue;
the clock expires day orders, asks remote venues about orders whose outcome is unknown, and polls the
orders resting at a remote venue (their fills recorded while nobody calls). Remote calls run with the
engine's lock released."""

from __future__ import annotations

import logging

from tacore.trading.engine.placing import Placing
from tacore.trading.model import Order, OrderStatus
from tacore.trading.model.market import Candle
from tacore.trading.venues import SimulatedVenue, VenueError, VenueReport

log = logging.getLogger("tacore.orders")

CANDLE_INTERVAL = "1m"


class MarketClock(Placing):
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
                order = self._live(order)
                if venue.remote and order.status is OrderStatus.ACCEPTED and not self.in_flight(order):
                    self._resolve_unknown(order, venue)
                    changed += 1
            changed += self._poll_remote_locked(now)
            if self.ledger.pending:
                self._flush_locked()
            return changed

    def _poll_remote_locked(self, now: int) -> int:
        """Ask each remote venue holding open orders for its open orders (one call per account); an order
        no longer among them is asked for by client order id (filled, canceled or expired meanwhile).
        Orders with a call under way are left to it. Returns the orders whose status or filled quantity
        changed."""
        resting: dict[str, list[Order]] = {}
        for order in self._open.values():
            venue = self.venues.get(order.account)
            if venue is not None and venue.remote and order.status is not OrderStatus.ACCEPTED \
                    and not self.in_flight(order):
                resting.setdefault(order.account, []).append(order)
        changed = 0
        for account, waiting in resting.items():
            if now < self._polled.get(account, 0) + self.remote_poll_ms:
                continue
            self._polled[account] = now
            venue = self.venues[account]
            waiting = [o for o in waiting if not self.in_flight(o) and o.is_open]
            if not waiting:
                continue
            try:
                with self._unlocked(*waiting):
                    reports = {r.client_order_id: r for r in venue.open_orders(account)}
            except VenueError as exc:
                log.warning("open orders of account %s at %s: %s; asking again later", account, venue.name, exc)
                continue
            for order in waiting:
                order = self._live(order)
                if not order.is_open or self.in_flight(order):
                    continue
                report: VenueReport | None = reports.get(order.client_order_id)
                if report is None:
                    try:
                        with self._unlocked(order):
                            report = venue.query(order)
                    except VenueError as exc:
                        log.warning("order %s (%s) at %s: %s; asking again later", order.id, order.client_order_id,
                                    venue.name, exc)
                        continue
                    order = self._live(order)
                    if report is None:
                        log.error("order %s (%s) is %s here but %s does not know it", order.id,
                                  order.client_order_id, order.status, venue.name)
                        continue
                if report.status is order.status and report.filled_qty == order.filled_qty:
                    continue
                self.apply(order, report)
                changed += 1
        return changed


def _next_minute(ts_ms: int) -> int:
    return ts_ms if ts_ms % 60_000 == 0 else ts_ms - ts_ms % 60_000 + 60_000
