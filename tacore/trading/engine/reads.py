"""Reads: orders by id or client order id, pages of orders, fills, positions and balances. Reads of
orders commit first, so they see every order whose reply may have been sent."""

from __future__ import annotations

from collections.abc import Iterable

from tacore.errors import Unavailable
from tacore.trading.engine.state import EngineState
from tacore.trading.ledger import LedgerUnavailable, OrderQuery
from tacore.trading.model import Balance, Fill, Order, Position


class Reads(EngineState):
    def find(self, account: str | None, order_id: str | None, client_order_id: str | None) -> Order:
        with self.lock:
            self._ready_locked()
            self._flush_locked()
            return self._find_locked(account, order_id, client_order_id)

    def list_orders(self, query: OrderQuery) -> tuple[list[Order], str | None]:
        with self.lock:
            self._ready_locked()
            self._flush_locked()
            try:
                page, cursor = self.ledger.list_orders(query)
            except LedgerUnavailable as exc:
                raise Unavailable(f"the order ledger is unavailable ({exc})") from None
            return [self._live(o) for o in page], cursor

    def fills_of(self, order_ids: Iterable[str]) -> dict[str, list[Fill]]:
        with self.lock:
            try:
                return self.ledger.fills_of(list(order_ids))
            except LedgerUnavailable as exc:
                raise Unavailable(f"the order ledger is unavailable ({exc})") from None

    def recent_fills(self, account: str | None, limit: int) -> list[tuple[Fill, Order | None]]:
        """The newest ``limit`` fills of every order (of ``account``), newest first, each with its order."""
        with self.lock:
            self._ready_locked()
            self._flush_locked()
            accounts = [account] if account is not None else sorted(
                {*self.accounts.names(), *(acct for acct, _ in self.portfolio.balances)})
            try:
                found = self.ledger.recent_fills(accounts, limit)
                orders = {o.id: o for o in self.ledger.orders_by_id({f.order_id for f in found})}
            except LedgerUnavailable as exc:
                raise Unavailable(f"the order ledger is unavailable ({exc})") from None
            return [(fill, self._live(orders[fill.order_id]) if fill.order_id in orders else None)
                    for fill in found]

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
