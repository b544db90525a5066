"""The request log never lies: a full, deleted or unreachable database is reported everywhere, records wait
in the recorder's bounded buffer, and only past it are the oldest dropped, counted and said.

Each test runs ``tacore serve`` (recorder, broker, workers, sidecar) for real; the full disk is a small
tmpfs mounted for the test (``tests.support.filesystems``), the unreachable server a PostgreSQL database
that does not exist yet.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select, text

from clients import AsyncClient, LazyPirateClient
from tacore.store.request_log import request_log
from tests.support.filesystems import fill, small_filesystem
from tests.support.processes import TACoreProcess, wait_until


def _rows(url: str, prefix: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ids = conn.execute(select(request_log.c.request_id).where(request_log.c.request_id.like(f"{prefix}-%")))
            return {str(row[0]) for row in ids}
    except Exception:
        return set()
    finally:
        engine.dispose()


async def _burst(endpoint: str, prefix: str, count: int) -> None:
    async with AsyncClient(endpoint) as client:
        replies = await asyncio.gather(*(client.request("health.check", request_id=f"{prefix}-{i}")
                                         for i in range(count)))
    assert all(r["status"] == "success" for r in replies)


def _states(tacore: TACoreProcess) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = tacore.status()["health"]["dependencies"]
    return states


def _metric(api: str, name: str) -> float:
    families = {f.name: f for f in text_string_to_metric_families(httpx.get(f"{api}/metrics", timeout=5).text)}
    return float(families[name].samples[0].value)


@pytest.fixture
def service(tacore_factory: Callable[..., TACoreProcess], tmp_path: Path) -> Iterator[Callable[..., TACoreProcess]]:
    def start(**env: str) -> TACoreProcess:
        # without the flow scheduler and the order process: they share the database under test
        tacore = tacore_factory(["serve", "--no-data-agent", "--no-flows", "--no-orders"], REQUEST_LOG_FLUSH_MS="100",
                                **env)
        tacore.wait_healthy(workers=2)
        wait_until(lambda: _states(tacore)["recorder"]["status"] == "up", 20, "the recorder reporting")
        return tacore

    yield start


@pytest.mark.timeout(120)
def test_a_full_database_holds_records_says_so_everywhere_and_loses_none(
        service: Callable[..., TACoreProcess], tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "db", 4) as mount:
        tacore = service(DATABASE_PATH=str(mount / "log.db"))
        api = f"http://127.0.0.1:{tacore.ports['API_PORT']}"
        url = f"sqlite:///{mount / 'log.db'}"
        asyncio.run(_burst(tacore.frontend, "before", 200))
        wait_until(lambda: len(_rows(url, "before")) == 200, 10, "the first requests logged")

        filler = fill(mount)
        asyncio.run(_burst(tacore.frontend, "held", 1000))
        states = wait_until(lambda: (s := _states(tacore))["database"]["status"] == "down" and s, 15,
                            "the full database reported down")
        assert "full" in states["database"]["reason"], states["database"]
        recorder = wait_until(lambda: (r := _states(tacore)["recorder"])["buffered"] == 1000 and r, 10,
                              "the held records counted")
        assert recorder["status"] == "degraded" and "holding 1000" in recorder["reason"]
        log = tacore.status()["request_log"]
        assert log["write_failures"] > 0 and log["dropped"] == 0 and log["buffered"] == 1000
        health = wait_until(lambda: (r := httpx.get(f"{api}/health", timeout=5)).json()["status"] == "degraded" and r,
                            5, "the sidecar's next poll")
        assert health.status_code == 200  # requests are still served
        assert health.json()["components"]["database"]["status"] == "down"
        wait_until(lambda: _metric(api, "tacore_request_log_write_failures") > 0, 5, "failures in /metrics")
        # the sidecar's snapshot of the broker can be one poll older than the failures counter's
        wait_until(lambda: _metric(api, "tacore_request_log_buffered_records") == 1000, 5,
                   "the held records in /metrics")
        assert "request log database" in tacore.output() and "unavailable" in tacore.output()

        filler.unlink()
        wait_until(lambda: len(_rows(url, "held")) == 1000, 20, "every held record written once space is back")
        wait_until(lambda: _states(tacore)["database"]["status"] == "up", 10, "the database up again")
        assert tacore.status()["request_log"]["dropped"] == 0
        tacore.stop()


@pytest.mark.timeout(120)
def test_past_the_buffer_the_oldest_records_are_dropped_counted_and_reported(
        service: Callable[..., TACoreProcess], tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "db", 4) as mount:
        tacore = service(DATABASE_PATH=str(mount / "log.db"), REQUEST_LOG_BUFFER="100")
        api = f"http://127.0.0.1:{tacore.ports['API_PORT']}"
        url = f"sqlite:///{mount / 'log.db'}"
        filler = fill(mount)
        with LazyPirateClient(tacore.frontend, timeout_ms=5000) as client:  # one at a time: logged in order
            for i in range(600):
                assert client.request("health.check", {}, request_id=f"over-{i}")["status"] == "success"
        log = wait_until(lambda: (r := tacore.status()["request_log"])["dropped"] == 500 and r, 15,
                         "500 records dropped past the 100-record buffer")
        assert log["dropped_by_recorder"] == 500 and log["buffered"] == 100
        recorder = wait_until(lambda: (r := _states(tacore)["recorder"])["dropped"] == 500 and r, 5,
                              "the drops in the states of the next heartbeat")
        assert recorder["status"] == "degraded" and recorder["reason"].startswith("500 request record(s) dropped")
        wait_until(lambda: httpx.get(f"{api}/health", timeout=5).json()["components"]["recorder"]["status"]
                   == "degraded", 5, "the drops in /health")
        wait_until(lambda: _metric(api, "tacore_request_log_dropped") == 500, 5, "drops in /metrics")
        assert "dropped the oldest" in tacore.output()

        filler.unlink()
        wait_until(lambda: len(_rows(url, "over")) == 100, 20, "the newest 100 written")
        assert _rows(url, "over") == {f"over-{i}" for i in range(500, 600)}
        tacore.stop()


@pytest.mark.timeout(90)
def test_a_deleted_database_directory_is_noticed_reported_and_recreated(
        service: Callable[..., TACoreProcess], tmp_path: Path) -> None:
    directory = tmp_path / "logdir"
    tacore = service(DATABASE_PATH=str(directory / "log.db"))
    url = f"sqlite:///{directory / 'log.db'}"
    asyncio.run(_burst(tacore.frontend, "first", 50))
    wait_until(lambda: len(_rows(url, "first")) == 50, 10, "the first requests logged")

    shutil.rmtree(directory)
    database = wait_until(lambda: (d := _states(tacore)["database"])["status"] == "degraded" and d, 20,
                          "the deletion reported")
    assert "disappeared" in database["reason"] and "recreated empty" in database["reason"]
    assert "is gone (deleted?)" in tacore.output()
    asyncio.run(_burst(tacore.frontend, "after", 50))
    wait_until(lambda: len(_rows(url, "after")) == 50, 10, "new requests logged in the recreated file")
    assert _rows(url, "first") == set()
    assert "recorder (pid" not in tacore.output(), "the recorder died instead of recreating the file"


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_an_unreachable_database_server_is_reported_and_the_recorder_waits_instead_of_crash_looping(
        service: Callable[..., TACoreProcess]) -> None:
    name = f"tacore_late_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    admin = create_engine("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    try:
        tacore = service(DATABASE_URL=url)  # the database does not exist yet: every connection is refused
        database = wait_until(lambda: (d := _states(tacore)["database"])["status"] == "down" and d, 15,
                              "the missing database reported down")
        assert name in database["reason"] and database["kind"] == "postgresql"
        asyncio.run(_burst(tacore.frontend, "waiting", 300))  # requests are served all the while
        log = wait_until(lambda: (r := tacore.status()["request_log"])["buffered"] == 300 and r, 15,
                         "the records held by the recorder")
        assert log["write_failures"] > 0 and log["dropped"] == 0 and log["database"]["ok"] is False
        output = tacore.output()
        assert "recorder (pid" not in output and "Traceback" not in output, "the recorder crashed"
        assert output.count("tacore.recorder: request log database") == 1, "one line when it goes away, not per retry"

        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        wait_until(lambda: len(_rows(url, "waiting")) == 300, 20, "the held records written once the server has it")
        assert wait_until(lambda: _states(tacore)["database"]["status"] == "up", 10, "the database up")
        assert tacore.status()["request_log"]["dropped"] == 0
        tacore.stop()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
