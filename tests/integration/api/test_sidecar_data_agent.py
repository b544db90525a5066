"""The seed's Data Agent HTTP API, forwarded through the broker to a data agent, with its seed shapes."""

from __future__ import annotations

import time

import httpx
import pytest

from .sidecar_helpers import Service, wait_until


@pytest.fixture(autouse=True)
def clean_agent(service: Service) -> None:
    assert service.agent is not None
    service.agent.streams.clear()


def test_add_list_and_remove_one_stream(http: httpx.Client) -> None:
    added = http.post("/streams/add", json={"symbol": "BTCUSDT", "interval": "1m"})
    assert added.status_code == 200, added.text
    assert added.json()["status"] == "ok" and "BTCUSDT" in added.json()["message"]

    assert http.get("/connections/count").json() == {"connection_count": 1}
    listing = http.get("/connections/list").json()
    assert listing["count"] == 1 and listing["connections"][0]["streams"] == ["btcusdt@kline_1m"]
    assert http.get("/symbols").json() == {"symbols": ["BTCUSDT"], "count": 1}
    status = http.get("/status").json()
    assert status["status"] == "ok" and status["connection_count"] == 1 and status["symbols"] == ["BTCUSDT"]

    removed = http.post("/streams/remove", json={"symbol": "BTCUSDT", "interval": "1m"})
    assert removed.status_code == 200 and removed.json()["status"] == "ok"
    assert http.get("/connections/count").json() == {"connection_count": 0}


def service_streams(http: httpx.Client) -> list[str]:
    return [s for c in http.get("/connections/list").json()["connections"] for s in c["streams"]]


def test_add_symbols_subscribes_every_interval(http: httpx.Client) -> None:
    reply = http.post("/symbols/add", json={"symbols": ["ETHUSDT", "SOLUSDT"]})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] in ("ok", "partial")
    assert len(body["results"]) == 2
    assert len(service_streams(http)) == 14
    assert body["summary"]["requested"] == 2
    assert http.get("/symbols").json()["symbols"] == ["ETHUSDT", "SOLUSDT"]


@pytest.mark.parametrize(("path", "body"), [
    ("/streams/add", {"symbol": "BTCUSDT"}),
    ("/streams/add", {"symbol": "BTC/USDT", "interval": "1m"}),
    ("/streams/add", {"symbol": "BTCUSDT", "interval": "1m", "extra": 1}),
    ("/streams/remove", {}),
    ("/symbols/add", {"symbols": []}),
    ("/symbols/add", {"symbols": "BTCUSDT"}),
])
def test_bad_bodies_are_422_before_reaching_the_agent(http: httpx.Client, path: str, body: dict) -> None:
    reply = http.post(path, json=body)
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"][0] == "body"


def test_the_agents_own_param_errors_come_back_as_422(http: httpx.Client) -> None:
    reply = http.post("/streams/add", json={"symbol": "BTCUSDT", "interval": "7m"})
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert detail[0]["loc"] == ["body", "interval"]
    assert "1m" in detail[0]["msg"]


def test_commands_are_in_the_request_log(http: httpx.Client) -> None:
    since = time.time()
    assert http.post("/streams/add", json={"symbol": "XRPUSDT", "interval": "5m"}).status_code == 200

    def logged() -> dict | None:
        body = http.get("/logs", params={"method": "kline.add_stream", "since": since, "limit": 1}).json()
        return body["items"][0] if body["total"] else None

    row = wait_until(logged, 5, "the forwarded command in the request log")
    assert row["status"] == "success" and row["request_id"].startswith("sidecar-")
