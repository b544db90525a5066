"""A fresh idempotency database per test: a SQLite file, or a database made on PostgreSQL or MariaDB."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

_SERVERS = {
    "postgresql": ("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
                   "postgresql+psycopg2://postgres@127.0.0.1:5432/{name}", '"', " WITH (FORCE)"),
    "mysql": ("mysql+pymysql://root@127.0.0.1:3306/", "mysql+pymysql://root@127.0.0.1:3306/{name}", "`", ""),
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("mysql", marks=pytest.mark.postgres)])
def store_at(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URL in a fresh database: a SQLite file, or a database created on the server and dropped after."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'idempotency.db'}"
        return
    admin_url, url, quote, drop_suffix = _SERVERS[request.param]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"tacore_idem_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {quote}{name}{quote}"))
    try:
        yield url.format(name=name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{drop_suffix}"))
        admin.dispose()
