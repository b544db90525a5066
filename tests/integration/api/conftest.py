"""Fixtures that run the real service on free loopback ports and always tear it down.

``service``: ``tacore serve --no-data-agent`` (recorder, broker, workers, the sidecar with an API
key) in its own process group, plus a stand-in data agent joined to its broker. ``demo``: ``tacore serve
--demo``, the real data agent on the exchange and LLM simulators, shared by the modules that need real data.
``bare_stack``: a broker, one worker and a key-less sidecar as separate processes, so a test can stop the broker
alone (``tacore serve`` would restart it).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .fake_agent import FakeAgent
from .sidecar_helpers import (
    API_KEY,
    HEARTBEAT_MS,
    START_TIMEOUT_S,
    Service,
    free_ports,
    private_dir,
    service_env,
    spawn,
    wait_until,
)


@contextlib.contextmanager
def _running(tmp: Path, api_key: str | None, **env: str) -> Iterator[Service]:
    """A ``Service`` on free ports in ``tmp``: the caller spawns and awaits its processes inside the block;
    on any failure their output goes to stderr, and the processes are always stopped."""
    ports = free_ports(5)
    environment = service_env(tmp, ports, **({"API_KEY": api_key} if api_key else {}), **env)
    svc = Service(f"http://127.0.0.1:{ports[4]}", f"tcp://127.0.0.1:{ports[0]}", f"tcp://127.0.0.1:{ports[1]}",
                  api_key, tmp, environment)
    try:
        yield svc
    except BaseException:
        for proc in svc.procs:
            sys.stderr.write(f"--- {proc.name} output ---\n{proc.output()[-6000:]}\n")
        raise
    finally:
        svc.close()


@pytest.fixture(scope="package")
def service() -> Iterator[Service]:
    with private_dir("service") as tmp:
        yield from _service(tmp)


def _service(tmp: Path) -> Iterator[Service]:
    with _running(tmp, API_KEY, WORKER_COUNT="2") as svc:
        svc.procs.append(spawn("serve", ["serve", "--no-data-agent"], svc.env, tmp))
        svc.agent = FakeAgent(svc.backend, heartbeat_interval_ms=HEARTBEAT_MS, frontend=svc.frontend).start()
        with svc.client() as http:
            wait_until(lambda: (r := http.get("/health")).status_code == 200
                       and r.json()["components"]["data_agent"]["status"] == "up", START_TIMEOUT_S,
                       "a serving service with its data agent")
        yield svc


@pytest.fixture
def http(service: Service) -> Iterator[httpx.Client]:
    with service.client() as client:
        yield client


@pytest.fixture
def bare_stack() -> Iterator[Service]:
    """Broker, one worker, recorder-less, and a sidecar without API key: each a separate process."""
    with private_dir("bare") as tmp:
        yield from _bare_stack(tmp)


def _bare_stack(tmp_path: Path) -> Iterator[Service]:
    with _running(tmp_path, None) as svc:
        svc.procs.append(spawn("broker", ["broker", "--no-request-log"], svc.env, tmp_path))
        svc.procs.append(spawn("worker", ["worker", "--count", "1", "--prefix", "bare-"], svc.env, tmp_path))
        svc.procs.append(spawn("api", ["api"], svc.env, tmp_path))
        with svc.client() as http:
            wait_until(lambda: http.get("/health").status_code == 200, START_TIMEOUT_S, "a healthy bare stack")
        yield svc


#: the demo starts two simulators and seeds 1,000 candles per interval of 11 symbols: on the shared 2-vCPU
#: machine (load average 10-20 while other sessions run their suites) that took over 35 s
DEMO_START_TIMEOUT_S = 120.0


@pytest.fixture(scope="package")
def demo() -> Iterator[Service]:
    """``tacore serve --demo`` with an API key: simulators, data agent with history, LLM simulator."""
    with private_dir("demo") as tmp:
        yield from _demo(tmp)


def _demo(tmp: Path) -> Iterator[Service]:
    with _running(tmp, API_KEY, WORKER_COUNT="1") as svc:
        svc.procs.append(spawn("demo", ["serve", "--demo"], svc.env, tmp))
        with svc.client() as http:
            # /health is 200 as soon as requests can be served; the data agent may still be starting
            wait_until(lambda: http.get("/health").json()["components"]["data_agent"]["status"] == "up",
                       DEMO_START_TIMEOUT_S, "the demo service with its data agent")
        yield svc


@pytest.fixture
def demo_http(demo: Service) -> Iterator[httpx.Client]:
    with demo.client() as client:
        yield client


@pytest.fixture(scope="package")
def flow_service() -> Iterator[Service]:
    """``tacore serve --demo`` with an API key: the exchange simulator, the real data agent storing its candles,
    the pool, the flow scheduler and the sidecar; ready once the flow routes answer and BTCUSDT has ten 1h
    candles stored (what the TradingFlow document's price node reads)."""
    with private_dir("flows") as tmp, _running(tmp, API_KEY, WORKER_COUNT="2") as svc:
        svc.procs.append(spawn("serve", ["serve", "--demo"], svc.env, tmp))
        with svc.client() as http:
            wait_until(lambda: http.get("/stats").status_code == 200, 3 * START_TIMEOUT_S, "the flow routes")
            wait_until(lambda: (r := http.get("/klines", params={"symbol": "BTCUSDT", "interval": "1h",
                                                                 "limit": 10})).status_code == 200
                       and r.json()["count"] == 10, 2 * START_TIMEOUT_S, "ten stored 1h BTCUSDT candles")
        yield svc
