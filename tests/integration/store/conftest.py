"""A fresh database per test: a SQLite file, or a database made on PostgreSQL or MariaDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sql_servers import server_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("mysql", marks=pytest.mark.postgres)])
def store_at(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URL in a fresh database: a SQLite file, or a database created on the server and dropped after."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'idempotency.db'}"
        return
    yield from server_database(request.param)
