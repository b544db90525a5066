"""The ledger: reads of orders, fills, positions and balances, and the group commit of what changed.

The order engine is its single writer. Changes are staged in memory (new and changed orders, their
events, fills, positions, balances, candle marks) and ``commit`` writes them in one transaction:
many orders per commit (and per fsync) under load, each order durable before its reply is sent.
The claim of a client order id is the unique key ``(account, client_order_id)`` of ``orders``.
"""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from tacore.trading.ledger import rows
from tacore.trading.ledger.fastpath import FastPath
from tacore.trading.ledger.tables import balances, candle_marks, fills, orders, positions
from tacore.trading.model import OPEN_STATUSES, Fill, Order, OrderStatus, Portfolio

log = logging.getLogger("tacore.orders")


class LedgerUnavailable(Exception):
    """The ledger's database could not be read or written; a failed commit wrote nothing."""


@dataclass(frozen=True, slots=True)
class OrderQuery:
    account: str | None = None
    statuses: frozenset[OrderStatus] | None = None
    symbols: tuple[str, ...] = ()
    after_ms: int | None = None  # created at or after
    until_ms: int | None = None  # created before
    newest_first: bool = True
    limit: int = 100
    cursor: str | None = None  # from the previous page's next_cursor


def encode_cursor(created_ms: int, order_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_ms}:{order_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """(created_ms, id) of the last order of the previous page; ValueError when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, order_id = text.partition(":")
        return int(created), order_id
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a cursor this server gave") from None


class Ledger:
    """Used under the engine's lock only: one connection, held (a checkout per statement cost more than
    the statement), dropped after an error and taken again on the next call."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self.fast = FastPath(engine.dialect)
        self._new: dict[str, Order] = {}  # by id, in arrival order
        self._new_keys: dict[tuple[str, str], Order] = {}  # (account, client_order_id) of staged new orders
        self._changed: dict[str, Order] = {}
        self._fills: list[Fill] = []
        self._marks: dict[str, int] = {}
        self._stored_marks: set[str] = set()
        self.commits = 0
        self.committed_orders = 0

    # -- staging ----------------------------------------------------------------------------------------
    def add(self, order: Order) -> None:
        """A new order (its intent): written by the next commit, which claims its client order id."""
        self._new[order.id] = order
        self._new_keys[(order.account, order.client_order_id)] = order

    def touch(self, order: Order) -> None:
        """An order that changed (its events are drained at commit)."""
        if order.id not in self._new:
            self._changed[order.id] = order

    def add_fill(self, fill: Fill) -> None:
        self._fills.append(fill)

    def set_mark(self, symbol: str, open_ms: int) -> None:
        self._marks[symbol] = open_ms

    @property
    def pending(self) -> bool:
        return bool(self._new or self._changed or self._fills or self._marks)

    def discard(self) -> None:
        """Forget everything staged (after a failed commit; the caller reloads its state)."""
        self._new.clear()
        self._new_keys.clear()
        self._changed.clear()
        self._fills.clear()
        self._marks.clear()

    # -- the group commit ---------------------------------------------------------------------------------
    def commit(self, portfolio: Portfolio) -> int:
        """Write everything staged (and the portfolio's changed rows) in one transaction; returns the
        number of orders written. Raises ``LedgerUnavailable`` having written nothing."""
        if not self.pending and not portfolio.dirty_balances and not portfolio.dirty_positions:
            return 0
        new, changed = list(self._new.values()), list(self._changed.values())
        events = [event for order in (*new, *changed) for event in order.drain_events()]
        try:
            conn = self._connection()
            with conn.begin():
                if new:
                    self.fast.insert(conn, "orders", [rows.order_row(o) for o in new])
                if changed:
                    conn.execute(_UPDATE_ORDER, [rows.order_update_row(o) for o in changed])
                if events:
                    self.fast.insert(conn, "order_events", [rows.event_row(e) for e in events])
                if self._fills:
                    self.fast.insert(conn, "fills", [rows.fill_row(f) for f in self._fills])
                self._write_portfolio(conn, portfolio)
                self._write_marks(conn)
        except (SQLAlchemyError, self.fast.error) as exc:
            self.discard()
            self._drop()
            raise LedgerUnavailable(f"order ledger ({self.engine.dialect.name}): {type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0][:300]}") from None
        portfolio.stored_balances |= portfolio.dirty_balances
        portfolio.stored_positions |= portfolio.dirty_positions
        portfolio.dirty_balances.clear()
        portfolio.dirty_positions.clear()
        self._stored_marks |= set(self._marks)
        self.commits += 1
        self.committed_orders += len(new)
        count = len(new) + len(changed)
        self._new.clear()
        self._new_keys.clear()
        self._changed.clear()
        self._fills.clear()
        self._marks.clear()
        return count

    def _write_portfolio(self, conn: Connection, portfolio: Portfolio) -> None:
        fresh_b = [rows.balance_row(portfolio.balances[k]) for k in portfolio.dirty_balances
                   if k not in portfolio.stored_balances]
        known_b = [{**rows.balance_row(portfolio.balances[k]), "k_account": k[0], "k_asset": k[1]}
                   for k in portfolio.dirty_balances if k in portfolio.stored_balances]
        fresh_p = [rows.position_row(portfolio.positions[k]) for k in portfolio.dirty_positions
                   if k not in portfolio.stored_positions]
        known_p = [{**rows.position_row(portfolio.positions[k]), "k_account": k[0], "k_symbol": k[1]}
                   for k in portfolio.dirty_positions if k in portfolio.stored_positions]
        if fresh_b:
            conn.execute(insert(balances), fresh_b)
        if known_b:
            conn.execute(_UPDATE_BALANCE, known_b)
        if fresh_p:
            conn.execute(insert(positions), fresh_p)
        if known_p:
            conn.execute(_UPDATE_POSITION, known_p)

    def _write_marks(self, conn: Connection) -> None:
        fresh = [{"symbol": s, "open_ms": t} for s, t in self._marks.items() if s not in self._stored_marks]
        known = [{"k_symbol": s, "open_ms": t} for s, t in self._marks.items() if s in self._stored_marks]
        if fresh:
            conn.execute(insert(candle_marks), fresh)
        if known:
            conn.execute(update(candle_marks).where(candle_marks.c.symbol == bindparam("k_symbol"))
                         .values(open_ms=bindparam("open_ms")), known)

    # -- reads --------------------------------------------------------------------------------------------
    def find(self, account: str, client_order_id: str) -> Order | None:
        """The order holding ``client_order_id`` in ``account`` (staged or stored)."""
        staged = self._new_keys.get((account, client_order_id))
        if staged is not None:
            return staged
        try:
            order_id = self.fast.order_id(self._connection(), account, client_order_id)
        except (SQLAlchemyError, self.fast.error) as exc:
            self._drop()
            raise LedgerUnavailable(f"order ledger ({self.engine.dialect.name}): {type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0][:300]}") from None
        return None if order_id is None else self.get(order_id)

    def get(self, order_id: str) -> Order | None:
        staged = self._new.get(order_id)
        if staged is not None:
            return staged
        found = self._one(_BY_ID, {"order_id": order_id})
        return None if found is None else rows.order_from_row(found)

    def open_orders(self) -> list[Order]:
        return [rows.order_from_row(r) for r in self._all(
            select(orders).where(orders.c.status.in_([s.value for s in OPEN_STATUSES])).order_by(orders.c.created_ms))]

    def list_orders(self, query: OrderQuery) -> tuple[list[Order], str | None]:
        """A page of orders and the cursor of the next page (None on the last)."""
        c = orders.c
        conditions: list[Any] = []
        if query.account is not None:
            conditions.append(c.account == query.account)
        if query.statuses is not None:
            conditions.append(c.status.in_([s.value for s in query.statuses]))
        if query.symbols:
            conditions.append(c.symbol.in_(query.symbols))
        if query.after_ms is not None:
            conditions.append(c.created_ms >= query.after_ms)
        if query.until_ms is not None:
            conditions.append(c.created_ms < query.until_ms)
        if query.cursor is not None:
            created, last_id = decode_cursor(query.cursor)
            if query.newest_first:
                conditions.append(or_(c.created_ms < created, and_(c.created_ms == created, c.id < last_id)))
            else:
                conditions.append(or_(c.created_ms > created, and_(c.created_ms == created, c.id > last_id)))
        order_by = (c.created_ms.desc(), c.id.desc()) if query.newest_first else (c.created_ms, c.id)
        found = [rows.order_from_row(r) for r in self._all(
            select(orders).where(*conditions).order_by(*order_by).limit(query.limit + 1))]
        more = len(found) > query.limit
        page = found[:query.limit]
        return page, encode_cursor(page[-1].created_ms, page[-1].id) if more and page else None

    def fills_of(self, order_ids: Sequence[str]) -> dict[str, list[Fill]]:
        if not order_ids:
            return {}
        out: dict[str, list[Fill]] = {oid: [] for oid in order_ids}
        for row in self._all(select(fills).where(fills.c.order_id.in_(list(order_ids))).order_by(fills.c.ts_ms)):
            out[row["order_id"]].append(rows.fill_from_row(row))
        return out

    def recent_fills(self, accounts: Sequence[str], limit: int) -> list[Fill]:
        """The newest ``limit`` fills of ``accounts``, newest first: one query per account, each read off the
        end of the ``(account, ts_ms)`` index however many fills the ledger holds, merged."""
        found: list[Fill] = []
        for account in accounts:
            found.extend(rows.fill_from_row(r) for r in self._all(
                select(fills).where(fills.c.account == account)
                .order_by(fills.c.ts_ms.desc(), fills.c.id.desc()).limit(limit)))
        found.sort(key=lambda f: (f.ts_ms, f.id), reverse=True)
        return found[:limit]

    def orders_by_id(self, order_ids: Iterable[str]) -> list[Order]:
        wanted = list(order_ids)
        if not wanted:
            return []
        return [rows.order_from_row(r) for r in self._all(select(orders).where(orders.c.id.in_(wanted)))]

    def load_portfolio(self) -> Portfolio:
        portfolio = Portfolio()
        for row in self._all(select(balances)):
            balance = rows.balance_from_row(row)
            portfolio.balances[(balance.account, balance.asset)] = balance
            portfolio.stored_balances.add((balance.account, balance.asset))
        for row in self._all(select(positions)):
            position = rows.position_from_row(row)
            portfolio.positions[(position.account, position.symbol)] = position
            portfolio.stored_positions.add((position.account, position.symbol))
        return portfolio

    def marks(self) -> dict[str, int]:
        found = {row["symbol"]: int(row["open_ms"]) for row in self._all(select(candle_marks))}
        self._stored_marks = set(found)
        return found

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.engine.connect()
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        self._drop()

    def _read(self, query: Any, params: dict[str, Any] | None, first: bool) -> Any:
        try:
            conn = self._connection()
            try:
                result = conn.execute(query, params or {}).mappings()
                return result.first() if first else list(result)
            finally:
                conn.rollback()  # end the read: an open read transaction would hold SQLite's log back
        except SQLAlchemyError as exc:
            self._drop()
            raise LedgerUnavailable(f"order ledger ({self.engine.dialect.name}): {type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0][:300]}") from None

    def _one(self, query: Any, params: dict[str, Any] | None = None) -> Any:
        return self._read(query, params, True)

    def _all(self, query: Any, params: dict[str, Any] | None = None) -> Iterable[Any]:
        return self._read(query, params, False)  # type: ignore[no-any-return]


_BY_ID = select(orders).where(orders.c.id == bindparam("order_id"))
_UPDATE_ORDER = update(orders).where(orders.c.id == bindparam("key_id")).values(
    {name: bindparam(name) for name in rows.ORDER_MUTABLE})
_UPDATE_BALANCE = update(balances).where(
    balances.c.account == bindparam("k_account"), balances.c.asset == bindparam("k_asset")).values(
    total=bindparam("total"), reserved=bindparam("reserved"), deposited=bindparam("deposited"),
    updated_ms=bindparam("updated_ms"))
_UPDATE_POSITION = update(positions).where(
    positions.c.account == bindparam("k_account"), positions.c.symbol == bindparam("k_symbol")).values(
    quote_asset=bindparam("quote_asset"), qty=bindparam("qty"), cost_basis=bindparam("cost_basis"),
    realized_pnl=bindparam("realized_pnl"), fees=bindparam("fees"), reserved_qty=bindparam("reserved_qty"),
    updated_ms=bindparam("updated_ms"))
