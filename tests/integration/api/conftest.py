"""Fixtures that run the real service on free loopback ports and always tear it down.

``service``: ``tacore serve --no-data-agent`` (recorder, broker, workers, the sidecar with an API
key) in its own process group, plus a stand-in data agent joined to its broker. ``demo``: ``tacore serve
--demo``, the real data agent on the exchange and LLM simulators, shared by the modules that need real data.
``bare_stack``: a broker, one worker and a key-less sidecar as separate processes, so a test can stop the broker
alone (``tacore serve`` would restart it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fake_agent import FakeAgent
from sidecar_helpers import (
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


@pytest.fixture(scope="session")
def service() -> Iterator[Service]:
    with private_dir("service") as tmp:
        yield from _service(tmp)


def _service(tmp: Path) -> Iterator[Service]:
    ports = free_ports(5)
    env = service_env(tmp, ports, API_KEY=API_KEY, WORKER_COUNT="2")
    svc = Service(f"http://127.0.0.1:{ports[4]}", f"tcp://127.0.0.1:{ports[0]}", f"tcp://127.0.0.1:{ports[1]}",
                  API_KEY, tmp, env)
    try:
        svc.procs.append(spawn("serve", ["serve", "--no-data-agent"], env, tmp))
        svc.agent = FakeAgent(svc.backend, heartbeat_interval_ms=HEARTBEAT_MS, frontend=svc.frontend).start()
        with svc.client() as http:
            wait_until(lambda: (r := http.get("/health")).status_code == 200
                       and r.json()["components"]["data_agent"]["status"] == "up", START_TIMEOUT_S,
                       "a serving service with its data agent")
        yield svc
    except BaseException:
        for proc in svc.procs:
            sys.stderr.write(f"--- {proc.name} output ---\n{proc.output()[-4000:]}\n")
        raise
    finally:
        svc.close()


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
    ports = free_ports(5)
    env = service_env(tmp_path, ports)
    svc = Service(f"http://127.0.0.1:{ports[4]}", f"tcp://127.0.0.1:{ports[0]}", f"tcp://127.0.0.1:{ports[1]}",
                  None, tmp_path, env)
    try:
        svc.procs.append(spawn("broker", ["broker", "--no-request-log"], env, tmp_path))
        svc.procs.append(spawn("worker", ["worker", "--count", "1", "--prefix", "bare-"], env, tmp_path))
        svc.procs.append(spawn("api", ["api"], env, tmp_path))
        with svc.client() as http:
            wait_until(lambda: http.get("/health").status_code == 200, START_TIMEOUT_S, "a healthy bare stack")
        yield svc
    except BaseException:
        for proc in svc.procs:
            sys.stderr.write(f"--- {proc.name} output ---\n{proc.output()[-4000:]}\n")
        raise
    finally:
        svc.close()


#: the demo starts two simulators and seeds 1,000 candles per interval of 11 symbols: on the shared 2-vCPU
#: machine (load average 10-20 while other sessions run their suites) that took over 35 s
DEMO_START_TIMEOUT_S = 120.0


@pytest.fixture(scope="session")
def demo() -> Iterator[Service]:
    """``tacore serve --demo`` with an API key: simulators, data agent with history, LLM simulator."""
    with private_dir("demo") as tmp:
        yield from _demo(tmp)


def _demo(tmp: Path) -> Iterator[Service]:
    ports = free_ports(5)
    env = service_env(tmp, ports, API_KEY=API_KEY, WORKER_COUNT="1")
    svc = Service(f"http://127.0.0.1:{ports[4]}", f"tcp://127.0.0.1:{ports[0]}", f"tcp://127.0.0.1:{ports[1]}",
                  API_KEY, tmp, env)
    try:
        svc.procs.append(spawn("demo", ["serve", "--demo"], env, tmp))
        with svc.client() as http:
            # /health is 200 as soon as requests can be served; the data agent may still be starting
            wait_until(lambda: http.get("/health").json()["components"]["data_agent"]["status"] == "up",
                       DEMO_START_TIMEOUT_S, "the demo service with its data agent")
        yield svc
    except BaseException:
        sys.stderr.write(f"--- demo output ---\n{svc.procs[0].output()[-4000:] if svc.procs else ''}\n")
        raise
    finally:
        svc.close()


@pytest.fixture
def demo_http(demo: Service) -> Iterator[httpx.Client]:
    with demo.client() as client:
        yield client


@pytest.fixture(scope="session")
def flow_service() -> Iterator[Service]:
    """``tacore serve --demo`` with an API key: the exchange simulator, the real data agent storing its candles,
    the pool, the flow scheduler and the sidecar; ready once the flow routes answer and BTCUSDT has ten 1h
    candles stored (what the TradingFlow document's price node reads)."""
    with private_dir("flows") as tmp:
        ports = free_ports(5)
        env = service_env(tmp, ports, API_KEY=API_KEY, WORKER_COUNT="2")
        svc = Service(f"http://127.0.0.1:{ports[4]}", f"tcp://127.0.0.1:{ports[0]}", f"tcp://127.0.0.1:{ports[1]}",
                      API_KEY, tmp, env)
        try:
            svc.procs.append(spawn("serve", ["serve", "--demo"], env, tmp))
            with svc.client() as http:
                wait_until(lambda: http.get("/stats").status_code == 200, 3 * START_TIMEOUT_S, "the flow routes")
                wait_until(lambda: (r := http.get("/klines", params={"symbol": "BTCUSDT", "interval": "1h",
                                                                     "limit": 10})).status_code == 200
                           and r.json()["count"] == 10, 2 * START_TIMEOUT_S, "ten stored 1h BTCUSDT candles")
            yield svc
        except BaseException:
            for proc in svc.procs:
                sys.stderr.write(f"--- {proc.name} output ---\n{proc.output()[-6000:]}\n")
            raise
        finally:
            svc.close()
