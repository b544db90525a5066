"""Alembic's entry point for the ledger: migrate the connection ``tacore.trading.ledger.schema`` passes in."""

from __future__ import annotations

from alembic import context

from tacore.trading.ledger.schema import VERSION_TABLE
from tacore.trading.ledger.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
