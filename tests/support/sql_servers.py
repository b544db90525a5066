"""Fresh databases on the machine's PostgreSQL and MariaDB servers, created for a test and dropped after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from sqlalchemy import create_engine, text

SERVERS = {
    # kind: (admin URL, URL of the test database, identifier quote, DROP suffix)
    "postgresql": ("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
                   "postgresql+psycopg2://postgres@127.0.0.1:5432/{name}", '"', " WITH (FORCE)"),
    "mysql": ("mysql+pymysql://root@127.0.0.1:3306/", "mysql+pymysql://root@127.0.0.1:3306/{name}", "`", ""),
}


def server_database(kind: str) -> Iterator[str]:
    """Yields the URL of a new, empty database on ``kind``'s server; drops it after."""
    admin_url, url, quote, drop_suffix = SERVERS[kind]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"tacore_test_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {quote}{name}{quote}"))
    try:
        yield url.format(name=name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{drop_suffix}"))
        admin.dispose()
