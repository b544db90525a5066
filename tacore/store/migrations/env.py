"""Alembic's entry point: migrate the connection ``tacore.store.migrate`` passes in ``config.attributes``."""

from __future__ import annotations

from alembic import context

from tacore.flows import tables as flow_tables
from tacore.store import idempotency, request_log

connection = context.config.attributes["connection"]
# every table these migrations own, so autogenerate compares against all of them
context.configure(connection=connection,
                  target_metadata=[request_log.metadata, idempotency.metadata, flow_tables.metadata],
                  render_as_batch=connection.dialect.name == "sqlite")  # SQLite alters tables by copying them
with context.begin_transaction():
    context.run_migrations()
