"""Bringing a request-log database to the newest schema at start-up, with Alembic.

The recorder (the request log's only writer, which ``tacore serve`` starts first) calls
``upgrade_schema`` at start-up; ``tacore api`` run alone does too. Under ``tacore serve`` the sidecar
only reads, so no two processes migrate one database at once. A database made
before Alembic came in (the table exists, the version table does not) is stamped at the first
revision, which matches what it has, and then upgraded in place: its rows stay.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

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


def upgrade_schema(engine: Engine) -> tuple[str | None, str]:
    """Apply every migration the database lacks; returns (revision before, revision now)."""
    if _is_current(engine):
        return HEAD_REVISION, HEAD_REVISION
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
