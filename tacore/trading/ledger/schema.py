"""The ledger's database: where it is, its engine, and bringing its schema to the newest revision.

``ledger_url``: ``ORDERS_DATABASE_URL``; else the service's server database (``DATABASE_URL``); else
SQLite ``orders.db`` beside ``DATABASE_PATH`` -- a file of its own, as the idempotency records have:
SQLite has one writer at a time and the request log's recorder writes its batches at background
priority, so sharing its file would hold order commits up behind it. SQLite runs in WAL mode with
``synchronous=NORMAL`` by default (a commit survives the death of any process, not an OS crash or a
power loss; ``ORDERS_SQLITE_SYNCHRONOUS=FULL`` syncs the log at each commit), PostgreSQL and MySQL as
their servers are set.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

log = logging.getLogger("tacore.orders")

VERSION_TABLE = "ledger_alembic_version"
#: The newest revision under migrations/versions (a test holds the two equal): a current database is
#: recognised with one query, without loading Alembic.
HEAD_REVISION = "l0001"


def ledger_url(orders_database_url: str | None, database_url: str | None, database_path: Path) -> str:
    if orders_database_url:
        return orders_database_url
    if database_url and not database_url.startswith("sqlite"):
        return database_url
    return f"sqlite:///{database_path.parent / 'orders.db'}"


def make_ledger_engine(url: str, *, timeout_s: float = 5.0, sqlite_synchronous: str = "NORMAL",
                       background_checkpoint: bool = False) -> Engine:
    """An engine whose waits (lock, connect, statement) are bounded by ``timeout_s``. With
    ``background_checkpoint`` its SQLite connections never checkpoint the log in a commit: the caller runs
    a ``tacore.store.wal_checkpoint.WalCheckpointer`` on the file instead."""
    connect_args: dict[str, Any] = {}
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        connect_args["timeout"] = timeout_s
        connect_args["check_same_thread"] = False
    elif url.startswith("postgresql"):
        ms = int(timeout_s * 1000)
        connect_args["connect_timeout"] = max(1, round(timeout_s))
        connect_args["options"] = f"-c statement_timeout={ms} -c lock_timeout={ms}"
    elif url.startswith("mysql") or url.startswith("mariadb"):
        seconds = max(1, round(timeout_s))
        connect_args.update(connect_timeout=seconds, read_timeout=seconds, write_timeout=seconds)
    if url in ("sqlite://", "sqlite:///:memory:"):  # one shared connection: tests' throwaway ledgers
        engine = create_engine(url, connect_args=connect_args, poolclass=StaticPool)
    else:  # a server's connections may drop while idle: test one when it is taken (the ledger holds it)
        engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"), connect_args=connect_args)
    if engine.dialect.name == "sqlite":
        mode = sqlite_synchronous.upper()
        if mode not in ("NORMAL", "FULL"):
            raise ValueError(f"sqlite synchronous mode must be NORMAL or FULL, not {sqlite_synchronous!r}")

        def pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={mode}")
            cursor.execute("PRAGMA foreign_keys=ON")
            if background_checkpoint:
                cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.close()

        event.listen(engine, "connect", pragmas)
    return engine


def _is_current(engine: Engine) -> bool:
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return False
        return list(conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()) == [HEAD_REVISION]


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise RuntimeError("no ledger migrations found")
    return head


def _config(connection: Any = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location",
                           str(resources.files("tacore.trading.ledger").joinpath("migrations")))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_ledger(engine: Engine) -> tuple[str | None, str]:
    """Apply every ledger migration the database lacks (an existing ledger is upgraded in place)."""
    if _is_current(engine):
        return HEAD_REVISION, HEAD_REVISION
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with engine.begin() as conn:
        before = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
        command.upgrade(_config(conn), "head")
    log.info("order ledger schema upgraded %s -> %s (%s)", before or "empty", HEAD_REVISION,
             engine.url.render_as_string(hide_password=True))
    return before, HEAD_REVISION
