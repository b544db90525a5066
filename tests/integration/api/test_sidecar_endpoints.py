"""The sidecar's read endpoints against a live service: health, auth, metrics, workers, methods, docs."""

from __future__ import annotations

import os
import signal
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from clients import LazyPirateClient

from .sidecar_helpers import Service, wait_until

GUARDED_GETS = ["/metrics", "/metrics/summary", "/logs", "/workers", "/methods", "/connections/count",
                "/connections/list", "/symbols", "/status", "/dashboard/data", "/docs", "/openapi.json",
                "/static/dashboard.js", "/static/vendor/uPlot.iife.min.js"]
WRITES = [("/streams/add", {"symbol": "BTCUSDT", "interval": "1m"}),
          ("/streams/remove", {"symbol": "BTCUSDT", "interval": "1m"}),
          ("/symbols/add", {"symbols": ["BTCUSDT"]})]


def send(service: Service, method: str, params: dict[str, object], count: int, prefix: str) -> list[dict]:
    with LazyPirateClient(service.frontend, timeout_ms=3000, retries=1) as client:
        return [client.request(method, params, request_id=f"{prefix}-{i}") for i in range(count)]


def test_health_is_open_and_names_every_component(service: Service) -> None:
    with service.client(key=None) as anon:
        # healthy once every process has reported (the recorder runs at idle priority: on a busy machine later)
        body = wait_until(lambda: (r := anon.get("/health")).status_code == 200 and r.json()["status"] == "healthy"
                          and r.json(), 15, "every dependency up")
    components = body["components"]
    assert set(components) == {"broker", "workers", "data_agent", "recorder", "database", "cache", "candle_store",
                               "disk"}
    assert all(c["status"] == "up" and c["reason"] for c in components.values()), components
    assert components["workers"]["live"] >= 2
    assert components["database"]["kind"] == "sqlite"
    assert components["cache"]["kind"] == "memory"  # REDIS_URL unset: the data agent caches in its memory
    assert components["data_agent"]["workers"] == ["fake-agent"]
    assert body["assessed_at"] <= body["checked_at"]


@pytest.mark.parametrize("path", GUARDED_GETS)
def test_reads_need_the_api_key(service: Service, path: str) -> None:
    with service.client(key=None) as anon, service.client(key="wrong-key") as wrong, service.client() as good:
        assert anon.get(path).status_code == 401
        assert wrong.get(path).status_code == 401
        assert good.get(path).status_code == 200, good.get(path).text


@pytest.mark.parametrize(("path", "body"), WRITES)
def test_writes_need_the_header_even_with_the_dashboard_cookie(service: Service, path: str, body: dict) -> None:
    with service.client(key=None, cookies={"tacore_api_key": service.api_key or ""}) as cookie_only:
        assert cookie_only.get("/workers").status_code == 200  # the cookie is enough to read
        reply = cookie_only.post(path, json=body)
    assert reply.status_code == 401
    assert "X-API-Key" in reply.json()["detail"]
    with service.client(key="wrong") as wrong:
        assert wrong.post(path, json=body).status_code == 401


def test_ping_is_open(service: Service) -> None:
    with service.client(key=None) as anon:
        reply = anon.get("/ping")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok", "message": "pong"}


def test_dashboard_login_sets_a_cookie_and_serves_the_page(service: Service) -> None:
    with service.client(key=None, follow_redirects=False) as anon:
        assert anon.get("/").status_code == 401
        assert anon.get("/", params={"api_key": "nope"}).status_code == 401
        login = anon.get("/", params={"api_key": service.api_key})
        assert login.status_code == 303
        assert "httponly" in login.headers["set-cookie"].lower()
        page = anon.get("/")
        assert page.status_code == 200
        assert "/static/vendor/uPlot.iife.min.js" in page.text
        assert anon.get("/static/vendor/uPlot.iife.min.js").status_code == 200
        assert anon.get("/static/../app.py").status_code == 404
    with service.client(key=None, follow_redirects=False) as browser:  # the form posts the key
        assert browser.post("/login", data={"api_key": "nope"}).status_code == 401
        posted = browser.post("/login", data={"api_key": service.api_key})
        assert posted.status_code == 303 and posted.headers["location"] == "/"
        assert browser.get("/").status_code == 200


def test_openapi_documents_every_endpoint(http: httpx.Client) -> None:
    paths = set(http.get("/openapi.json").json()["paths"])
    assert {"/health", "/metrics", "/metrics/summary", "/logs", "/workers", "/methods", "/ping",
            "/connections/count", "/connections/list", "/symbols", "/status", "/streams/add",
            "/streams/remove", "/symbols/add", "/"} <= paths
    docs = http.get("/docs")
    assert "/static/vendor/swagger-ui-bundle.js" in docs.text  # served locally: works offline


def _families(http: httpx.Client) -> dict[str, object]:
    reply = http.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(reply.text)}


def test_metrics_parse_and_follow_traffic(service: Service, http: httpx.Client) -> None:
    families = _families(http)
    for name in ("tacore_requests", "tacore_request_duration_seconds", "tacore_queue_depth", "tacore_workers",
                 "tacore_cache_hits", "tacore_cache_misses", "tacore_klines_ingested",
                 "tacore_process_cpu_seconds", "tacore_process_resident_memory_bytes", "process_cpu_seconds",
                 "tacore_broker_up"):
        assert name in families, name

    def successes() -> float:
        fam = _families(http)["tacore_requests"]
        return sum(s.value for s in fam.samples  # type: ignore[attr-defined]
                   if s.labels == {"method": "health.check", "status": "success"} and s.name.endswith("_total"))

    before = successes()
    send(service, "health.check", {}, 25, f"metrics-{uuid.uuid4().hex}")
    wait_until(lambda: successes() >= before + 25, 5, "the request counter to move")

    hist = _families(http)["tacore_request_duration_seconds"]
    samples = [s for s in hist.samples if s.labels.get("method") == "health.check"]  # type: ignore[attr-defined]
    buckets = [s for s in samples if s.name.endswith("_bucket")]
    counts = [s.value for s in buckets]
    assert counts == sorted(counts), "histogram buckets must be cumulative"
    assert buckets[-1].labels["le"] == "+Inf"
    count = next(s.value for s in samples if s.name.endswith("_count"))
    assert buckets[-1].value == count >= 25
    states = {s.labels["state"]: s.value for s in _families(http)["tacore_workers"].samples}  # type: ignore[attr-defined]
    assert set(states) >= {"idle", "busy", "dead"}
    assert states["idle"] + states["busy"] >= 2


def test_metrics_summary_has_the_seed_fields(service: Service, http: httpx.Client) -> None:
    send(service, "health.check", {}, 10, f"summary-{uuid.uuid4().hex}")
    body = wait_until(lambda: (r := http.get("/metrics/summary").json())["requests_per_second_1m"] and r, 5,
                      "a request rate")
    for key in ("requests_total", "success_rate", "avg_response_ms", "p95_response_ms", "p99_response_ms",
                "requests_per_second_1m", "cache_hit_rate", "cpu_percent", "memory_percent"):
        assert key in body, key
    assert body["requests_total"] >= 10
    assert 0.0 < body["success_rate"] <= 1.0
    assert body["p95_response_ms"] <= body["p99_response_ms"]
    assert body["cache_hit_rate"] == pytest.approx(0.75, abs=0.01)  # the fake agent counts 3 hits per miss
    assert body["cpu_percent"] >= 0 and 0 < body["memory_percent"] < 100
    assert body["targets"]["p95_response_ms"]["target"] == "< 100"
    assert body["targets"]["cache_hit_rate"]["met"] is False  # 75 % is under the seed's 90 %


def test_workers_lists_state_pid_methods_and_heartbeat(http: httpx.Client) -> None:
    body = http.get("/workers").json()
    assert body["live"] >= 3  # two pool workers and the data agent
    pool = [w for w in body["workers"] if w["kind"] == "worker" and w["state"] != "dead"]
    assert len(pool) >= 2
    for worker in pool:
        assert worker["pid"] > 0 and "health.check" in worker["methods"]
        assert worker["heartbeat_age_s"] < 3
        assert worker["current"] == [] or worker["state"] == "busy"
    assert http.get("/workers", params={"kind": "data-agent"}).json()["workers"][0]["worker_id"] == "fake-agent"
    assert http.get("/workers", params={"state": "sleepy"}).status_code == 422


def wait_for_full_pool(http: httpx.Client) -> None:
    """The pool restarts a killed worker: wait for both again, so later tests see the whole service."""
    def full() -> bool:
        rows = http.get("/workers", params={"kind": "worker"}).json()["workers"]
        return sum(1 for w in rows if w["state"] != "dead") >= 2 and http.get("/health").status_code == 200

    wait_until(full, 15, "the pool back to two live workers")


def test_a_killed_worker_shows_dead_within_seconds(http: httpx.Client) -> None:
    victim = next(w for w in http.get("/workers").json()["workers"]
                  if w["kind"] == "worker" and w["state"] != "dead")
    os.kill(victim["pid"], signal.SIGKILL)

    def dead() -> bool:
        rows = http.get("/workers").json()["workers"]
        return any(w["pid"] == victim["pid"] and w["state"] == "dead" for w in rows)

    wait_until(dead, 4, f"worker pid {victim['pid']} to show dead")
    wait_for_full_pool(http)


def test_a_hung_worker_shows_dead_once_its_heartbeats_stop(http: httpx.Client) -> None:
    victim = next(w for w in http.get("/workers").json()["workers"]
                  if w["kind"] == "worker" and w["state"] != "dead")
    os.kill(victim["pid"], signal.SIGSTOP)  # alive to the OS, silent to the broker
    try:
        def dead() -> dict | None:
            rows = http.get("/workers").json()["workers"]
            return next((w for w in rows if w["pid"] == victim["pid"] and w["state"] == "dead"), None)

        row = wait_until(dead, 5, f"hung worker pid {victim['pid']} to show dead")
        assert row["dead_reason"] == "heartbeat expired"
    finally:
        os.kill(victim["pid"], signal.SIGKILL)  # the pool replaces it
    wait_for_full_pool(http)


def test_methods_report_rates_percentiles_and_errors(service: Service, http: httpx.Client) -> None:
    prefix = f"methods-{uuid.uuid4().hex}"
    send(service, "health.check", {}, 20, prefix)
    bad = send(service, "health.check", {"detailed": "not-a-bool"}, 3, prefix + "-bad")
    assert [r["error"]["code"] for r in bad] == ["INVALID_PARAMS"] * 3, bad
    bogus = f"test.bogus_{uuid.uuid4().hex[:8]}"
    send(service, bogus, {}, 2, prefix + "-unknown")

    def row(name: str) -> dict | None:
        return next((m for m in http.get("/methods").json()["methods"] if m["method"] == name), None)

    # every undeclared name is counted in one bucket (a row per name would grow without bound)
    unknown = wait_until(lambda: (r := row("(unknown)")) and r["count"] >= 2 and r, 15, "the unknown-method row")
    assert unknown["errors"]["UNKNOWN_METHOD"] == unknown["count"] and unknown["success_rate"] == 0
    assert row(bogus) is None
    # the sidecar's view is a snapshot a tick behind the broker: wait for the one that has the bad calls
    health = wait_until(lambda: (r := row("health.check")) and r["errors"].get("INVALID_PARAMS", 0) >= 3 and r,
                        15, "health.check's INVALID_PARAMS counted")
    assert 0 < health["success_rate"] < 1
    assert health["p50_ms"] <= health["p95_ms"] <= health["p99_ms"]
    assert health["workers"] >= 1 and health["idempotent"] is True  # a killed worker may still be restarting


def test_dashboard_data_is_incremental(http: httpx.Client) -> None:
    first = http.get("/dashboard/data").json()
    assert first["broker"]["up"] is True
    assert first["workers"] and first["methods"] and first["summary"]["requests_total"] > 0
    assert first["kline"]["up"] is True
    last = first["series"]["ts"][-1]
    later = wait_until(lambda: (d := http.get("/dashboard/data", params={"since": last}).json())["series"]["ts"]
                       and d, 4, "a new chart point")
    assert all(ts > last for ts in later["series"]["ts"])
    assert http.get("/dashboard/data", params={"since": "yesterday"}).status_code == 422
