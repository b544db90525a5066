"""Fixtures: a ledger database on SQLite (a file), PostgreSQL or MariaDB, created fresh and dropped after;
an engine factory wiring a real ledger, the paper venue and prices the test sets."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "trading"))

from engine_harness import Harness

_SERVERS = {
    "postgresql": ("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
                   "postgresql+psycopg2://postgres@127.0.0.1:5432/{name}", '"', " WITH (FORCE)"),
    "mysql": ("mysql+pymysql://root@127.0.0.1:3306/", "mysql+pymysql://root@127.0.0.1:3306/{name}", "`", ""),
}


def server_database(kind: str) -> Iterator[str]:
    admin_url, url, quote, drop_suffix = _SERVERS[kind]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"tacore_ledger_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {quote}{name}{quote}"))
    try:
        yield url.format(name=name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{drop_suffix}"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("mysql", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'orders.db'}"
    else:
        yield from server_database(request.param)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'orders.db'}"


@pytest.fixture
def harness_factory() -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(url: str, **kwargs: object) -> Harness:
        harness = Harness(url, **kwargs)  # type: ignore[arg-type]
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()
