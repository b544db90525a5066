"""The ledger's Alembic chain: it builds exactly the tables the code defines, on SQLite, PostgreSQL and
MariaDB, knows its head without Alembic, and leaves an existing ledger's rows in place."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select

from tacore.trading.ledger.schema import HEAD_REVISION, VERSION_TABLE, head_revision, make_ledger_engine, upgrade_ledger
from tacore.trading.ledger.tables import balances, metadata


def test_the_migrations_build_exactly_the_tables_the_code_defines(ledger_url: str) -> None:
    engine = make_ledger_engine(ledger_url)
    try:
        assert upgrade_ledger(engine) == (None, HEAD_REVISION)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE,
                                                             "compare_type": True})
            assert compare_metadata(context, metadata) == []
            names = set(inspect(conn).get_table_names())
        assert {"orders", "order_events", "fills", "positions", "balances", "candle_marks", VERSION_TABLE} <= names
    finally:
        engine.dispose()


def test_the_head_is_known_without_alembic_and_an_existing_ledger_keeps_its_rows(sqlite_url: str) -> None:
    assert head_revision() == HEAD_REVISION
    engine = make_ledger_engine(sqlite_url)
    try:
        upgrade_ledger(engine)
        with engine.begin() as conn:
            conn.execute(insert(balances), {"account": "paper", "asset": "USDT", "total": 5, "reserved": 0,
                                            "deposited": 5, "updated_ms": 1})
        assert upgrade_ledger(engine) == (HEAD_REVISION, HEAD_REVISION)
        with engine.connect() as conn:
            assert conn.execute(select(balances.c.total)).scalar() == 5
    finally:
        engine.dispose()
