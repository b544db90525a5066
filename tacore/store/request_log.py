"""The request log: one row per answered request, written in batches by the recorder process.

The broker never touches the database: it ships compact records to the recorder (see
``tacore.recorder``), which inserts them here in batches. Any SQLAlchemy URL works; the default is
SQLite at ``DATABASE_PATH``. The schema is managed by Alembic (``tacore/store/migrations``,
applied at start-up by ``tacore.store.migrate.upgrade_schema``): this table definition is what the
newest migration produces, and a test holds the two equal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    false,
    insert,
)
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from tacore.store.request_trace import error_column, params_column

metadata = MetaData()

request_log = Table(
    "request_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(256), nullable=True),
    Column("method", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # success | error
    Column("error_code", String(32), nullable=True),
    Column("worker_id", String(128), nullable=True),
    Column("priority", Integer, nullable=False),
    Column("queue_ms", Float, nullable=False),  # receipt -> dispatch to a worker
    Column("processing_ms", Float, nullable=False),  # handler time, as the worker measured it
    Column("total_ms", Float, nullable=False),  # receipt -> reply sent
    Column("received_at", Float, nullable=False),  # epoch seconds
    Column("finished_at", Float, nullable=False),  # epoch seconds
    #: the service's own traffic (the sidecar's polling, the scheduler's calls): kept out of user figures
    Column("internal", Boolean, nullable=False, server_default=false()),
    #: the call's params as JSON, secrets redacted (tacore/store/request_trace.py); its error's message
    Column("params", Text, nullable=True),
    Column("error_message", Text, nullable=True),
    Index("ix_request_log_received_at", "received_at"),
    Index("ix_request_log_request_id", "request_id"),
    Index("ix_request_log_method_received", "method", "received_at"),
    Index("ix_request_log_error_code", "error_code"),
    Index("ix_request_log_internal_received", "internal", "received_at"),
)

#: Field order of a record as the broker ships it (a JSON array, to keep the hot path cheap). Two more may
#: follow: the request as it arrived (or its size) and, for an error, the reply; the recorder turns them into
#: the ``params`` and ``error_message`` columns.
RECORD_FIELDS: tuple[str, ...] = (
    "request_id", "method", "status", "error_code", "worker_id", "priority",
    "queue_ms", "processing_ms", "total_ms", "received_at", "finished_at", "internal",
)
_FIELD_COUNT = len(RECORD_FIELDS)


#: Seconds to wait for a database server to accept a connection (the drivers' own defaults are minutes).
CONNECT_TIMEOUT_S = 5


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for any other database or an in-memory one)."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return Path(url.removeprefix("sqlite:///"))
    return None


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL so the sidecar can read while the recorder writes.

    A SQLite file is opened afresh for each use (``NullPool``, about 0.1 ms): a pooled connection would
    keep reading and writing a file someone deleted, and nobody would notice (the recorder checks that
    the file is still there, and recreates it, before each batch).
    """
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, poolclass=NullPool)
    elif url.startswith("sqlite"):
        engine = create_engine(url, pool_pre_ping=True)
    else:
        engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", sqlite_pragmas)
    return engine


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL, ``synchronous=NORMAL`` (a commit survives the process's death) and a 5 s busy timeout, on each new
    connection to a service SQLite file (the request log's engine, the flow store's writer)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


#: (field, longest value its column takes) of the string fields; longer values are cut to fit.
_STRING_LIMITS: tuple[tuple[str, int], ...] = tuple(
    (name, int(length)) for name in RECORD_FIELDS
    if (length := getattr(request_log.c[name].type, "length", None)) is not None)
_FLOAT_FIELDS: tuple[str, ...] = tuple(name for name in RECORD_FIELDS if isinstance(request_log.c[name].type, Float))


def bounded_row(record: Sequence[Any]) -> dict[str, Any]:
    """One shipped record as a row every database accepts: strings cut to their column's length (a worker
    chooses its id and error codes; a longer value would fail the whole batch on PostgreSQL or MariaDB),
    NUL characters replaced (PostgreSQL refuses them), non-finite numbers stored as 0."""
    row = dict(zip(RECORD_FIELDS, record, strict=True))
    for name, limit in _STRING_LIMITS:
        value = row[name]
        if value is not None:
            if type(value) is not str:
                value = row[name] = str(value)
            if len(value) > limit or "\x00" in value:
                row[name] = value[:limit].replace("\x00", "\ufffd")
    for name in _FLOAT_FIELDS:
        value = row[name]
        if type(value) is not float or not math.isfinite(value):
            row[name] = _finite(value)
    return row


def _finite(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def insert_records(engine: Engine, records: Sequence[Sequence[Any]]) -> int:
    """Insert shipped records (arrays in ``RECORD_FIELDS`` order) in one transaction."""
    if not records:
        return 0
    rows = [_row(record) for record in records]
    with engine.begin() as conn:
        conn.execute(insert(request_log), rows)
    return len(rows)


def _row(record: Sequence[Any]) -> dict[str, Any]:
    row = bounded_row(record[:_FIELD_COUNT])
    extra = record[_FIELD_COUNT:]
    row["params"] = params_column(extra[0]) if extra else None
    row["error_message"] = error_column(extra[1]) if len(extra) > 1 else None
    return row
