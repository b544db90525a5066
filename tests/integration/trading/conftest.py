"""Fixtures: a ledger database on SQLite (a file), PostgreSQL or MariaDB, created fresh and dropped after;
an engine factory wiring a real ledger, the paper venue and prices the test sets."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.sql_servers import server_database

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "trading"))

from engine_harness import Harness


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
