"""Fixtures that run the real service on free loopback ports and always tear it down.

``service``: ``tacore serve --no-data-agent`` (recorder, broker, workers, the sidecar with an API
key) in its own process group, plus a stand-in data agent joined to its broker. ``bare_stack``:
a broker, one worker and a key-less sidecar as separate processes, so a test can stop the broker
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
        svc.agent = FakeAgent(svc.backend, heartbeat_interval_ms=HEARTBEAT_MS).start()
        with svc.client() as http:
            wait_until(lambda: http.get("/health").status_code == 200, START_TIMEOUT_S, "a healthy service")
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
