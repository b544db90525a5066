"""``tacore serve`` as a user runs it: starts everything, stops everything on SIGTERM/SIGINT, exit code 0."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from clients import LazyPirateClient
from tests.support.processes import TACoreProcess, wait_until


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_every_child_and_exits_zero(tacore_factory: Callable[..., TACoreProcess], sig: int) -> None:
    tacore = tacore_factory()
    tacore.wait_healthy(workers=2)
    assert tacore.proc is not None
    children = psutil.Process(tacore.proc.pid).children(recursive=True)
    assert len(children) >= 4  # recorder, broker, two workers (and multiprocessing's tracker)
    code = tacore.stop(sig)
    assert code == 0, tacore.output()[-3000:]
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"children left running: {alive}"
    logs = Path(tacore.env["LOG_DIR"])
    assert "tacore stopped" in (logs / "tacoreservice.log").read_text()
    assert "worker w1 stopped" in (logs / "worker.log").read_text()



def test_a_supervisor_killed_9_takes_every_child_with_it(tacore_factory: Callable[..., TACoreProcess]) -> None:
    """No orphan keeps the ports: the children were forked from the template, which now ends with the supervisor."""
    tacore = tacore_factory()
    tacore.wait_healthy(workers=2)
    assert tacore.proc is not None
    children = psutil.Process(tacore.proc.pid).children(recursive=True)
    assert {"tacore: broker", "tacore: recorder", "tacore: process-template"} <= {c.name() for c in children}
    try:
        tacore.proc.kill()
        tacore.proc.wait(5)
        _, alive = psutil.wait_procs(children, timeout=20)
        assert not alive, f"children left running after the supervisor was killed: {alive}"
        with socket.socket() as sock:  # nothing listens on the broker's port (a new broker binds it, as ZeroMQ does)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", tacore.ports["ZMQ_FRONTEND_PORT"]))
    finally:
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()

def test_bad_setting_stops_start_up_with_a_message_naming_it(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "tacore", "serve"], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "WORKER_COUNT": "zero"}, timeout=30)
    assert result.returncode == 2
    assert "WORKER_COUNT" in result.stderr


@pytest.mark.timeout(120)
def test_demo_serve_runs_every_component_with_live_data_then_stops_cleanly(
    tacore_factory: Callable[..., TACoreProcess],
) -> None:
    tacore = tacore_factory(["serve", "--demo"], WORKER_COUNT="1")
    api = f"http://127.0.0.1:{tacore.ports['API_PORT']}"

    last: list[str] = []  # the last /health answer, for the failure message

    def healthy() -> bool:
        response = httpx.get(f"{api}/health", timeout=2)
        last[:] = [f"{response.status_code} {response.text[:2000]}"]
        return response.status_code == 200 and response.json()["components"]["data_agent"]["status"] == "up"

    try:
        wait_until(healthy, 60, "the sidecar reporting every component up")  # 10-21 s here, on a loaded machine
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nlast /health: {last or 'none (never answered)'}\n"
                             f"service output (tail):\n{tacore.output()[-4000:]}") from None
    with LazyPirateClient(tacore.frontend, timeout_ms=5000) as client:
        wait_until(lambda: client.call("kline.status")["flowing_streams"] >= 28, 20, "4 demo symbols x 7 streams")
        market = wait_until(lambda: (m := client.get_market_data(["BTCUSDT"]))["symbols"]["BTCUSDT"]["status"] == "ok"
                            and m, 20, "a BTCUSDT price")
    assert market["symbols"]["BTCUSDT"]["price"] > 0
    assert tacore.proc is not None
    children = psutil.Process(tacore.proc.pid).children(recursive=True)
    assert tacore.stop(signal.SIGTERM) == 0, tacore.output()[-3000:]
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"children left running: {alive}"
