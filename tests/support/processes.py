"""Real TACore processes for tests: started on free loopback ports, always stopped (and reaped)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from tests.support.ports import free_ports

ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # retried until the deadline
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what} (last error: {last_error!r})")


def raw_call(endpoint: str, request: dict[str, Any] | bytes, timeout_ms: int = 3000) -> dict[str, Any]:
    """One request over a fresh REQ socket, exactly like the seed's client."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        body = request if isinstance(request, bytes) else json.dumps(request).encode()
        sock.send(body)
        if not sock.poll(timeout_ms):
            raise TimeoutError(f"no reply from {endpoint}")
        reply: dict[str, Any] = json.loads(sock.recv())
        return reply
    finally:
        sock.close()


class TACoreProcess:
    """A ``tacore`` command run as a real process group with its own ports, data and log dirs."""

    def __init__(self, workdir: Path, args: list[str], *, env: dict[str, str] | None = None,
                 ports: dict[str, int] | None = None, preexec: Callable[[], None] | None = None) -> None:
        self.workdir = workdir
        self.args = args
        self.preexec = preexec  # run in the child before exec (e.g. a lower RLIMIT_NOFILE)
        names = ("ZMQ_FRONTEND_PORT", "ZMQ_BACKEND_PORT", "EVENTS_PORT", "RECORDER_PORT", "API_PORT")
        self.ports = ports or dict(zip(names, free_ports(len(names)), strict=True))
        self.env = {
            **os.environ,
            **{k: str(v) for k, v in self.ports.items()},
            "DATABASE_PATH": str(workdir / "data" / "tacoreservice.db"),
            "DATA_DIR": str(workdir / "data"),
            "LOG_DIR": str(workdir / "logs"),
            "TACORESERVICE_ENV": "test",
            "HEARTBEAT_INTERVAL_MS": "200",
            "WORKER_COUNT": "2",
            **(env or {}),
        }
        if "REDIS_URL" not in (env or {}):
            self.env.pop("REDIS_URL", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"tacore-{args[0]}-{uuid.uuid4().hex[:6]}.out"

    @property
    def frontend(self) -> str:
        return f"tcp://127.0.0.1:{self.ports['ZMQ_FRONTEND_PORT']}"

    @property
    def backend(self) -> str:
        return f"tcp://127.0.0.1:{self.ports['ZMQ_BACKEND_PORT']}"

    def start(self) -> TACoreProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        out = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "tacore", *self.args], cwd=self.workdir, env=self.env,
                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=self.preexec)
        out.close()
        return self

    def wait_healthy(self, timeout: float = 60.0, workers: int = 1) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            assert self.proc is not None and self.proc.poll() is None, self.output()
            status = raw_call(self.frontend, {"request_id": uuid.uuid4().hex, "method": "broker.status"}, 500)
            return status["data"] if status["data"]["live_workers"] >= workers else None

        result: dict[str, Any] = wait_until(ready, timeout, f"{self.args[0]} with {workers} live workers")
        return result

    def status(self) -> dict[str, Any]:
        reply = raw_call(self.frontend, {"request_id": uuid.uuid4().hex, "method": "broker.status"})
        data: dict[str, Any] = reply["data"]
        return data

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Signal the process (not its group: the supervisor stops its children) and reap everything."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        code = self.proc.poll()
        # Whatever is left of the group (there should be nothing) is killed so no test leaks processes.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if code is None:
            self.proc.wait(5)
        return code


def kill_9_service(pid: int) -> None:
    """SIGKILL a service's supervisor and every process under it, children first.

    Its children leave the supervisor's process group (a Ctrl-C reaches only the supervisor) and get
    SIGTERM when it dies, so ``os.killpg`` of the supervisor would let them stop gracefully: a crash of
    the whole service is every process killed, none told."""
    import psutil

    root = psutil.Process(pid)
    family = root.children(recursive=True)
    for proc in [*family, root]:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
