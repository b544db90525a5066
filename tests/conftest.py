"""Fixtures shared by every test folder: a running TACore (broker + pool + recorder) on free ports."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.processes import ROOT, TACoreProcess


@pytest.fixture
def tacore_factory(tmp_path: Path) -> Iterator[Callable[..., TACoreProcess]]:
    """Start ``tacore`` processes (``serve`` without data agent and sidecar by default); all are stopped after."""
    started: list[TACoreProcess] = []

    def start(args: list[str] | None = None, **env: str) -> TACoreProcess:
        proc = TACoreProcess(tmp_path / f"svc{len(started)}", args or ["serve", "--no-data-agent", "--no-api"],
                             env=env).start()
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
    proc = TACoreProcess(tmp_path_factory.mktemp("shared"), ["serve", "--no-data-agent", "--no-api"]).start()
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
