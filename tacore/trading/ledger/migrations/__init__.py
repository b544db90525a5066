"""Alembic migrations of the order ledger, a chain of its own (version table ``ledger_alembic_version``).

The ledger lives in the service's server database (``DATABASE_URL``) beside the request log, or by
default in SQLite ``orders.db`` (the request log's SQLite file has a background-priority writer that
would hold order commits up). Applied by the order process at start-up (``schema.upgrade_ledger``).
"""
