"""Bringing a request-log database to the newest schema at start-up, with Alembic.

The recorder (the request log's only writer, which ``tacore serve`` starts first) calls
``upgrade_schema`` at start-up; ``tacore api`` run alone does too, and so does the flow scheduler,
whose tables share the chain. Processes that start together take a lock first (a file lock beside a
SQLite file, an advisory lock on PostgreSQL and MySQL), so one migrates and the others then find the
database current, never half-made. A database made
before Alembic came in (the table exists, the version table does not) is stamped at the first
revision, which matches what it has, and then upgraded in place: its rows stay.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from collections.abc import Iterator
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger("tacore.store")

#: The revision that matches the request log created before Alembic (``metadata.create_all``).
BASELINE_REVISION = "0001"
#: The newest revision under migrations/versions (a test holds the two equal). Knowing it lets a process
#: whose database is already current skip loading Alembic at all, which is most starts of every process.
HEAD_REVISION = "0005"


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("tacore.store").joinpath("migrations")))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision, as Alembic reads it from the migration scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise RuntimeError("no migrations found under tacore/store/migrations")
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _is_current(engine: Engine) -> bool:
    """True when the database is at ``HEAD_REVISION`` (plain SQL: no Alembic import)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return False
        return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()) == [HEAD_REVISION]


#: Arbitrary constant naming the migration lock on server databases.
_LOCK_KEY = 0x7AC0_4E01
_LOCK_WAIT_S = 120


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Held by one process at a time per database, released when the block ends (or the process dies)."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            yield
            return
        with open(f"{database}.migrate.lock", "a+b") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        return
    with engine.connect() as conn:
        if dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
                conn.commit()
        elif dialect in ("mysql", "mariadb"):
            got = conn.execute(text("SELECT GET_LOCK(:name, :wait)"),
                               {"name": f"tacore_migrate_{_LOCK_KEY}", "wait": _LOCK_WAIT_S}).scalar()
            if got != 1:
                raise RuntimeError(f"another process held the schema migration lock for {_LOCK_WAIT_S} s")
            try:
                yield
            finally:
                conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": f"tacore_migrate_{_LOCK_KEY}"})
        else:  # pragma: no cover - the dialects TACore supports are above
            yield


#: How long a process starting on a fresh SQLite file keeps retrying "database is locked" (see upgrade_schema).
_SQLITE_LOCKED_RETRY_S = 30.0


def upgrade_schema(engine: Engine) -> tuple[str | None, str]:
    """Apply every migration the database lacks; returns (revision before, revision now).

    On SQLite a process that opens a fresh file while another switches it to WAL or migrates it can be
    told "database is locked" at once, past any busy timeout (seen once in six processes starting together
    on a loaded machine); that is a start-up race, not a fault, so it is retried with backoff for a while.
    """
    deadline = time.monotonic() + _SQLITE_LOCKED_RETRY_S
    pause = 0.05
    while True:
        try:
            return _upgrade_once(engine)
        except OperationalError as exc:
            locked = engine.dialect.name == "sqlite" and "database is locked" in str(exc)
            if not locked or time.monotonic() + pause > deadline:
                raise
            log.info("schema check on %s: database is locked (another process starting); retrying",
                     engine.url.render_as_string(hide_password=True))
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


def _upgrade_once(engine: Engine) -> tuple[str | None, str]:
    if _is_current(engine):
        return HEAD_REVISION, HEAD_REVISION
    with _migration_lock(engine):
        if _is_current(engine):  # another process migrated it while this one waited
            return HEAD_REVISION, HEAD_REVISION
        return _upgrade(engine)


def _upgrade(engine: Engine) -> tuple[str | None, str]:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with engine.begin() as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        config = _config(conn)
        if before is None and inspect(conn).has_table("request_log"):
            command.stamp(config, BASELINE_REVISION)
            before = BASELINE_REVISION
            log.info("request log made before schema versioning: taken as revision %s", BASELINE_REVISION)
        head = head_revision()
        if before != head:
            command.upgrade(config, "head")
            log.info("request log schema upgraded %s -> %s (%s)", before or "empty", head,
                     engine.url.render_as_string(hide_password=True))
    return before, head
