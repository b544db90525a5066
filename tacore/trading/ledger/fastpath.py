"""The ledger's hot statements compiled once for the database's dialect and run on the DBAPI cursor.

A group commit inserts several rows into each of ``orders``, ``order_events`` and ``fills``, and every
new order first looks for its client order id. Through SQLAlchemy's executemany each row cost more in
parameter processing than the database spent storing it; here the rows go to the driver as tuples (or
dicts, for drivers with named parameters), with exact decimals as canonical text on SQLite and as
``Decimal`` elsewhere -- what ``ExactDecimal`` does, done once per value.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.engine import Connection, Dialect

from tacore.trading.ledger.tables import ExactDecimal, fills, order_events, orders


class CompiledInsert:
    def __init__(self, table: Table, dialect: Dialect) -> None:
        self.keys = [c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)]
        compiled = insert(table).compile(dialect=dialect, column_keys=self.keys)
        self.sql = str(compiled)
        self.positional = bool(compiled.positional)
        self.order = list(compiled.positiontup or []) if self.positional else self.keys
        self._values = itemgetter(*self.order)
        # SQLite keeps exact decimals as text (Decimal's own str: exact, read back by Decimal())
        self._text = [i for i, k in enumerate(self.order) if isinstance(table.c[k].type, ExactDecimal)] \
            if dialect.name == "sqlite" else []

    def params(self, rows: Sequence[dict[str, Any]]) -> list[Any]:
        out = []
        for row in rows:
            values = list(self._values(row))
            for i in self._text:
                if values[i] is not None:
                    values[i] = str(values[i])
            out.append(values if self.positional else dict(zip(self.order, values, strict=True)))
        return out


class FastPath:
    """Compiled inserts and the client order id probe for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.inserts = {t.name: CompiledInsert(t, dialect) for t in (orders, order_events, fills)}
        probe = select(orders.c.id).where(orders.c.account == bindparam("account"),
                                          orders.c.client_order_id == bindparam("client_order_id"))
        compiled = probe.compile(dialect=dialect)
        self.probe_sql = str(compiled)
        self.probe_order = list(compiled.positiontup or []) if compiled.positional else None
        self.error: type[Exception] = dialect.loaded_dbapi.Error

    def insert(self, conn: Connection, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` inside ``conn``'s open transaction."""
        statement = self.inserts[table]
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(statement.sql, statement.params(rows))
        finally:
            cursor.close()

    def order_id(self, conn: Connection, account: str, client_order_id: str) -> str | None:
        """The id of the order holding ``client_order_id`` in ``account`` (outside any transaction)."""
        values = {"account": account, "client_order_id": client_order_id}
        params: Any = tuple(values[k] for k in self.probe_order) if self.probe_order is not None else values
        dbapi = conn.connection
        cursor = dbapi.cursor()
        try:
            cursor.execute(self.probe_sql, params)
            row = cursor.fetchone()
        finally:
            cursor.close()
            dbapi.rollback()  # a server would otherwise hold this read's transaction open
        return None if row is None else str(row[0])
