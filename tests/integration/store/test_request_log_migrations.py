"""The request log's Alembic migrations on SQLite, PostgreSQL and MariaDB: a fresh database reaches the
newest schema, a database made before Alembic is upgraded in place with its rows, and the migrations
produce exactly the table the code declares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, inspect, select
from sqlalchemy.engine import Engine

from tacore.flows import tables as flow_tables
from tacore.store import idempotency
from tacore.store.migrate import (
    BASELINE_REVISION,
    HEAD_REVISION,
    current_revision,
    head_revision,
    upgrade_schema,
)
from tacore.store.request_log import insert_records, make_engine, metadata, request_log
from tests.support.databases import fresh_server_database


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database: a SQLite file, then a fresh database on PostgreSQL and on MariaDB."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'log.db'}"
        else:
            url = stack.enter_context(fresh_server_database(request.param))
        eng = make_engine(url)
        stack.callback(eng.dispose)
        yield eng


def _legacy_table(md: MetaData) -> Table:
    """The request log exactly as ``metadata.create_all`` made it before Alembic came in."""
    return Table(
        "request_log", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("request_id", String(256), nullable=True),
        Column("method", String(128), nullable=False),
        Column("status", String(16), nullable=False),
        Column("error_code", String(32), nullable=True),
        Column("worker_id", String(128), nullable=True),
        Column("priority", Integer, nullable=False),
        Column("queue_ms", Float, nullable=False),
        Column("processing_ms", Float, nullable=False),
        Column("total_ms", Float, nullable=False),
        Column("received_at", Float, nullable=False),
        Column("finished_at", Float, nullable=False),
        Index("ix_request_log_received_at", "received_at"),
        Index("ix_request_log_request_id", "request_id"),
        Index("ix_request_log_method_received", "method", "received_at"),
        Index("ix_request_log_error_code", "error_code"),
    )


def _schema_differences(engine: Engine) -> list[object]:
    """What the migrated database lacks or has beyond the tables the code declares (all the migrations')."""
    declared = MetaData()
    for table in (*metadata.tables.values(), *idempotency.metadata.tables.values(),
                  *flow_tables.metadata.tables.values()):  # 0004: the flow engine's history
        table.to_metadata(declared)
    with engine.connect() as conn:
        diff: list[object] = compare_metadata(MigrationContext.configure(conn), declared)
        return diff


def test_an_empty_database_is_migrated_to_the_declared_schema(engine: Engine) -> None:
    assert current_revision(engine) is None
    before, now = upgrade_schema(engine)
    assert (before, now) == (None, head_revision()) and current_revision(engine) == head_revision()
    assert _schema_differences(engine) == []
    insert_records(engine, [["r1", "health.check", "success", None, "w1", 5, 0.1, 1.0, 1.2, 10.0, 10.1, False],
                            ["own", "kline.status", "success", None, "a1", 9, 0.1, 1.0, 1.2, 11.0, 11.1, True]])
    with engine.connect() as conn:
        rows = {r: i for r, i in conn.execute(select(request_log.c.request_id, request_log.c.internal))}
    assert rows == {"r1": False, "own": True}


def test_a_database_from_before_alembic_is_upgraded_in_place_keeping_its_rows(engine: Engine) -> None:
    legacy = MetaData()
    table = _legacy_table(legacy)
    legacy.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"request_id": f"old{i}", "method": "health.check", "status": "success",
                                       "priority": 5, "queue_ms": 0.1, "processing_ms": 1.0, "total_ms": 1.2,
                                       "received_at": 100.0 + i, "finished_at": 100.1 + i} for i in range(3)])
    before, now = upgrade_schema(engine)
    assert (before, now) == (BASELINE_REVISION, head_revision())
    assert _schema_differences(engine) == []
    with engine.connect() as conn:
        rows = [tuple(row) for row in conn.execute(select(request_log.c.request_id, request_log.c.internal)
                                                   .order_by(request_log.c.id))]
    assert rows == [("old0", False), ("old1", False), ("old2", False)]  # what was logged stays user traffic
    assert "ix_request_log_internal_received" in {ix["name"] for ix in inspect(engine).get_indexes("request_log")}


def test_upgrading_a_database_at_the_newest_revision_changes_nothing(engine: Engine) -> None:
    upgrade_schema(engine)
    insert_records(engine, [["r1", "health.check", "success", None, "w1", 5, 0.1, 1.0, 1.2, 10.0, 10.1, False]])
    assert upgrade_schema(engine) == (head_revision(), head_revision())
    with engine.connect() as conn:
        assert conn.execute(select(request_log.c.request_id)).scalars().all() == ["r1"]



def test_the_known_head_is_the_newest_migration() -> None:
    """``HEAD_REVISION`` lets a current database skip Alembic; it must name the newest script."""
    assert head_revision() == HEAD_REVISION
