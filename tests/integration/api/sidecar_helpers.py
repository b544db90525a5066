"""Process and polling helpers for the sidecar's integration tests (bounded in time, always reaped)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tacore.local_ports import server_port

from .fake_agent import FakeAgent

API_KEY = "test-key-0123456789"
HEARTBEAT_MS = 300
START_TIMEOUT_S = 90.0  # a shared 2-core machine under load starts `tacore serve` slowly


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = server_port()  # below the ephemeral range (tacore.local_ports)
        if port not in ports:
            ports.append(port)
    return ports


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; bounded in time."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


@dataclass
class Proc:
    """A child process in its own session, so teardown reaches its children too."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):  # children left behind in the group
            os.killpg(self.popen.pid, signal.SIGKILL)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def private_dir(prefix: str) -> Iterator[Path]:
    """A working directory outside pytest's basetemp: a concurrent pytest run on the same machine prunes
    old basetemp directories, and must not delete the SQLite file of a service that is still running."""
    path = Path(tempfile.mkdtemp(prefix=f"tacore-api-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def spawn(name: str, args: list[str], env: dict[str, str], cwd: Path) -> Proc:
    log_path = cwd / f"{name}.out"
    with log_path.open("wb") as out:
        # ``-m tacore.cli`` is ``tacore``; its command line just does not read "tacore serve", so a
        # ``pkill -f "tacore serve"`` run by someone else on a shared machine cannot stop these tests
        popen = subprocess.Popen([sys.executable, "-m", "tacore.cli", *args], cwd=cwd, env=env, stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return Proc(name, popen, log_path)


def service_env(tmp: Path, ports: list[int], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "ZMQ_", "TACORE"))}
    env.update({
        "ZMQ_FRONTEND_PORT": str(ports[0]), "ZMQ_BACKEND_PORT": str(ports[1]), "EVENTS_PORT": str(ports[2]),
        "RECORDER_PORT": str(ports[3]), "API_PORT": str(ports[4]), "DATABASE_PATH": str(tmp / "data" / "log.db"),
        "LOG_DIR": str(tmp / "logs"), "DATA_DIR": str(tmp / "data"), "HEARTBEAT_INTERVAL_MS": str(HEARTBEAT_MS),
        "REQUEST_LOG_FLUSH_MS": "100", "TACORESERVICE_LOG_LEVEL": "INFO", "TACORE_CONFIG": str(tmp / "none.yaml"),
    })
    (tmp / "none.yaml").write_text("{}\n")
    env.update(extra)
    return env


@dataclass
class Service:
    base_url: str
    frontend: str
    backend: str
    api_key: str | None
    tmp: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    agent: FakeAgent | None = None

    def proc(self, name: str) -> Proc:
        return next(p for p in self.procs if p.name == name)

    def client(self, key: str | None = "default", **kwargs: Any) -> httpx.Client:
        headers = {}
        key = self.api_key if key == "default" else key
        if key is not None:
            headers["X-API-Key"] = key
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10.0, **kwargs)

    def close(self) -> None:
        if self.agent is not None:
            self.agent.close()
        for proc in reversed(self.procs):
            proc.stop()


