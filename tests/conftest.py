"""Fixtures shared by every test folder: a running TACore (broker + pool + recorder) on free ports, and
the candle store on both of its backends (embedded chDB and a ClickHouse server)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

from tacore.store.klines import KlineStore
from tests.support.databases import fresh_server_database
from tests.support.ports import free_port
from tests.support.processes import ROOT, TACoreProcess

#: Set by .ci/run, which starts the ClickHouse server once for the whole run; unset, the tests start one.
CLICKHOUSE_URL_ENV = "TACORE_TEST_CLICKHOUSE_URL"


@pytest.fixture
def tacore_factory(tmp_path: Path) -> Iterator[Callable[..., TACoreProcess]]:
    """Start ``tacore`` processes (``serve`` without data agent, flow scheduler and sidecar by default); all are
    stopped after."""
    started: list[TACoreProcess] = []

    def start(args: list[str] | None = None, **env: str) -> TACoreProcess:
        args = args or ["serve", "--no-data-agent", "--no-api", "--no-flows"]
        proc = TACoreProcess(tmp_path / f"svc{len(started)}", args, env=env).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def tacore(tacore_factory: Callable[..., TACoreProcess]) -> TACoreProcess:
    proc = tacore_factory()
    proc.wait_healthy(workers=2)
    return proc


@pytest.fixture(scope="session")
def shared_tacore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TACoreProcess]:
    """One ``tacore serve`` for the tests that only send requests and change nothing."""
    proc = TACoreProcess(tmp_path_factory.mktemp("shared"),
                         ["serve", "--no-data-agent", "--no-api", "--no-flows", "--no-orders"]).start()
    try:
        proc.wait_healthy(workers=2)
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def test_worker_factory(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start test-method workers (tests.support.method_worker.py) as real processes; killed after.

    Every worker of a test claims non-idempotent requests in the same SQLite file.
    """
    procs: list[subprocess.Popen[bytes]] = []

    def start(endpoint: str, worker_id: str, credit: int = 1, **env: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{worker_id}.out").open("ab")
        environ = {**os.environ, "IDEMPOTENCY_URL": f"sqlite:///{tmp_path / 'idempotency.db'}", **env}
        proc = subprocess.Popen([sys.executable, "-m", "tests.support.method_worker", endpoint, worker_id, str(credit)],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=environ)
        log.close()
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://USER:PASSWORD@127.0.0.1:PORT`` of a running ClickHouse server (tests/support/clickhouse_server.py).

    CI's, when .ci/run started one; otherwise one started here for the session and stopped after.
    """
    url = os.environ.get(CLICKHOUSE_URL_ENV)
    if url:
        yield url.rstrip("/")
        return
    workdir = tmp_path_factory.mktemp("clickhouse")
    log = (workdir / "server.out").open("w+b")
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.clickhouse_server", "--dir", str(workdir),
                             "--port", str(free_port()), "--password", uuid.uuid4().hex], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        from tests.support.processes import wait_until

        def ready() -> str | None:
            assert proc.poll() is None, (workdir / "server.out").read_text(errors="replace")
            lines = (workdir / "server.out").read_text(errors="replace").splitlines()
            return next((line.split()[1] for line in lines if line.startswith("ready ")), None)

        yield str(wait_until(ready, 90, "the ClickHouse server", interval=0.2))
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


@contextlib.contextmanager
def clickhouse_database(server: str) -> Iterator[str]:
    """A DSN of a new database on ``server``, dropped on exit."""
    import clickhouse_connect

    database = f"tacore_test_{uuid.uuid4().hex[:12]}"
    admin = clickhouse_connect.get_client(dsn=f"{server}/default")
    admin.command(f"CREATE DATABASE {database}")
    try:
        yield f"{server}/{database}"
    finally:
        admin.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        admin.close()


@pytest.fixture
def clickhouse_dsn(clickhouse_server: str) -> Iterator[str]:
    """A ClickHouse DSN with a database of its own (dropped after the test), as ``CLICKHOUSE_URL`` takes it."""
    with clickhouse_database(clickhouse_server) as dsn:
        yield dsn


@pytest.fixture(params=["chdb", "clickhouse"])
def kline_dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The candle store's DSN on each backend in turn: embedded chDB, then a ClickHouse server.

    Tests of anything that reads or writes candles (ingest, history, analytics queries) take this (or
    ``kline_store``) so the same assertions hold on both.
    """
    if request.param == "chdb":
        return f"chdb://{tmp_path}/klines"
    dsn: str = request.getfixturevalue("clickhouse_dsn")
    return dsn


@pytest.fixture(scope="module", params=["chdb", "clickhouse"])
def module_kline_dsn(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``kline_dsn`` for a store a whole module shares (seeded once, e.g. the analytics queries' candles).

    pytest runs the module's tests on chDB first, then on the ClickHouse server. chDB allows one
    directory per process: a module's store must be closed before the next module opens its own.
    """
    if request.param == "chdb":
        yield f"chdb://{tmp_path_factory.mktemp('klines')}/klines"
        return
    with clickhouse_database(request.getfixturevalue("clickhouse_server")) as dsn:
        yield dsn


@pytest.fixture
def kline_store(kline_dsn: str) -> Iterator[KlineStore]:
    """An open candle store on each backend in turn (see ``kline_dsn``)."""
    store = KlineStore(kline_dsn)
    store.open()
    yield store
    store.close()


@pytest.fixture(params=["chdb", "clickhouse"])
def storage_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment for a data agent process on each backend: none (embedded chDB under DATA_DIR), then
    ``CLICKHOUSE_URL`` of a ClickHouse server database that lives as long as the test."""
    if request.param == "chdb":
        return {}
    return {"CLICKHOUSE_URL": request.getfixturevalue("clickhouse_dsn")}


@pytest.fixture(params=["mysql", "postgresql"])
def server_database(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A fresh database on the machine's PostgreSQL or MariaDB server: (dialect, URL); dropped after."""
    with fresh_server_database(request.param) as url:
        yield request.param, url


SIDECAR_TESTS = "tests/integration/api/"


class SuiteScheduling(LoadScopeScheduling):
    """How pytest-xdist shares the suite out (``-n 2`` in pyproject.toml): a whole module to one worker, so its
    module-scoped services start once, and the whole sidecar package to one worker, since its tests share the
    package's service stacks (two workers would each start them)."""

    def _split_scope(self, nodeid: str) -> str:
        if nodeid.startswith(SIDECAR_TESTS):
            return SIDECAR_TESTS
        return super()._split_scope(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> SuiteScheduling:
    return SuiteScheduling(config, log)
