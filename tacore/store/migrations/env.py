"""Alembic's entry point: migrate the connection ``tacore.store.migrate`` passes in ``config.attributes``."""

from __future__ import annotations

from alembic import context

from tacore.store.request_log import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")  # SQLite alters tables by copying them
with context.begin_transaction():
    context.run_migrations()
