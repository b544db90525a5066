"""A broker that stops: broker-backed endpoints answer 503 naming it, never 500; they recover with it."""

from __future__ import annotations

import os
import signal

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .sidecar_helpers import Service, free_ports, private_dir, service_env, spawn, wait_until

BROKER_BACKED = ["/workers", "/methods", "/metrics/summary", "/connections/count", "/connections/list",
                 "/symbols", "/status", "/ping"]


def test_keyless_sidecar_stays_on_loopback_and_says_so(bare_stack: Service) -> None:
    api = bare_stack.proc("api")
    log = api.output()
    assert "API_KEY is not set" in log and "127.0.0.1" in log
    listening = [c.laddr for c in psutil.Process(api.popen.pid).net_connections(kind="tcp")
                 if c.status == psutil.CONN_LISTEN]
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening
    with bare_stack.client(key=None) as anon:
        assert anon.get("/workers").status_code == 200  # no key configured: no key asked


def test_broker_down_gives_503_and_recovery_gives_200(bare_stack: Service) -> None:
    with bare_stack.client(key=None) as http:
        assert http.get("/workers").status_code == 200
        bare_stack.proc("broker").stop()

        wait_until(lambda: http.get("/workers").status_code == 503, 5, "/workers to notice the broker is gone")
        for path in BROKER_BACKED:
            reply = http.get(path)
            assert reply.status_code == 503, (path, reply.text)
            assert reply.json()["component"] in ("broker", "data_agent")
            assert reply.json()["detail"]
        post = http.post("/streams/add", json={"symbol": "BTCUSDT", "interval": "1m"})
        assert post.status_code == 503 and post.json()["component"] == "broker"

        health = http.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "unhealthy"
        assert health.json()["components"]["broker"]["status"] == "down"
        # the broker assembles the dependency states: while it is down they are unknown, not guessed
        assert health.json()["components"]["database"] == {
            "status": "unknown", "reason": "the broker, which assembles the states, is not answering"}

        metrics = http.get("/metrics")  # the exporter convention: still scrapeable, broker_up 0
        assert metrics.status_code == 200
        up = next(f for f in text_string_to_metric_families(metrics.text) if f.name == "tacore_broker_up")
        assert up.samples[0].value == 0
        assert http.get("/logs").status_code == 200  # the request log does not need the broker
        page = http.get("/dashboard/data").json()
        assert page["broker"]["up"] is False and page["broker"]["error"]

        bare_stack.procs.append(spawn("broker-again", ["broker", "--no-request-log"], bare_stack.env,
                                      bare_stack.tmp))
        wait_until(lambda: http.get("/health").status_code == 200, 15, "health after the broker restarts")
        assert http.get("/workers").status_code == 200


def test_data_agent_absent_is_503_not_configured_is_healthy(bare_stack: Service) -> None:
    with bare_stack.client(key=None) as http:
        health = http.get("/health").json()
        assert health["components"]["data_agent"]["status"] == "not_configured"
        reply = http.get("/symbols")
        assert reply.status_code == 503
        assert reply.json()["component"] == "data_agent" and "not running" in reply.json()["detail"]


def test_unknown_paths_are_404_not_500(bare_stack: Service) -> None:
    with bare_stack.client(key=None) as http:
        assert http.get("/nope").status_code == 404
        assert isinstance(http, httpx.Client)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sidecar_exits_cleanly_on_signals(bare_stack: Service, signum: signal.Signals) -> None:
    api = bare_stack.proc("api")
    os.kill(api.popen.pid, signum)
    assert api.popen.wait(10) == 0
    out = api.output()
    assert "monitoring sidecar stopped" in out and "Traceback" not in out


def test_database_down_is_503_naming_it() -> None:
    """A sidecar alone, its database a PostgreSQL nobody listens on, no broker: 503s, never a 500."""
    with private_dir("nodb") as tmp:
        ports = free_ports(6)
        env = service_env(tmp, ports[:5], DATABASE_URL=f"postgresql+psycopg2://tacore:x@127.0.0.1:{ports[5]}/tacore")
        svc = Service(f"http://127.0.0.1:{ports[4]}", "", "", None, tmp, env)
        svc.procs.append(spawn("api", ["api"], env, tmp))
        try:
            with svc.client(key=None) as http:
                health = wait_until(lambda: (r := http.get("/health")).status_code == 503 and r.json(), 15,
                                    "the sidecar to answer /health")
                assert health["components"]["database"]["status"] == "unknown"
                assert health["components"]["broker"]["status"] == "down"
                logs = http.get("/logs")
                assert logs.status_code == 503 and logs.json()["component"] == "database"
                assert http.get("/workers").status_code == 503
                assert http.get("/metrics").status_code == 200
        finally:
            svc.close()
