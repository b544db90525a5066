"""Fresh databases on the machine's PostgreSQL and MariaDB servers, for tests that need a server's SQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

SERVERS = {
    # dialect: (admin URL, URL of the test database, CREATE/DROP quoting, DROP suffix)
    "postgresql": ("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
                   "postgresql+psycopg2://postgres@127.0.0.1:5432/{name}", '"', " WITH (FORCE)"),
    "mysql": ("mysql+pymysql://root@127.0.0.1:3306/", "mysql+pymysql://root@127.0.0.1:3306/{name}", "`", ""),
}


@contextmanager
def fresh_server_database(dialect: str) -> Iterator[str]:
    """The URL of a new, empty database on ``dialect``'s server; dropped on exit."""
    admin_url, url, quote, drop_suffix = SERVERS[dialect]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"tacore_test_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {quote}{name}{quote}"))
    except Exception as exc:  # the servers are part of this machine's setup; say so loudly if one is missing
        admin.dispose()
        pytest.fail(f"{dialect} server is not reachable: {exc}")
    try:
        yield url.format(name=name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{drop_suffix}"))
        admin.dispose()
