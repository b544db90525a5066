"""The sidecar against the real data agent: ``tacore serve --demo`` (exchange simulator + data agent; the
``demo`` fixture of conftest.py)."""

from __future__ import annotations

from typing import Any

import httpx

from .sidecar_helpers import Service, wait_until

DEMO_SYMBOLS = {"BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"}
DEMO_US_SYMBOLS = {"AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA"}


def test_real_agent_answers_the_seed_reads(demo_http: httpx.Client) -> None:
    symbols = demo_http.get("/symbols").json()
    assert set(symbols["symbols"]) >= DEMO_SYMBOLS and symbols["count"] == len(symbols["symbols"])
    assert demo_http.get("/connections/count").json()["connection_count"] >= 1
    listing = demo_http.get("/connections/list").json()
    assert listing["count"] == len(listing["connections"]) >= 1
    status = demo_http.get("/status").json()
    assert status["status"] in ("ok", "degraded") and set(status["symbols"]) >= DEMO_SYMBOLS
    with httpx.Client(base_url=str(demo_http.base_url)) as anon:
        assert anon.get("/ping").json() == {"status": "ok", "message": "pong"}


def test_real_agent_commands_and_their_validation(demo_http: httpx.Client) -> None:
    added = demo_http.post("/streams/add", json={"symbol": "XRPUSDT", "interval": "1m"})
    assert added.status_code == 200 and added.json()["status"] == "ok", added.text
    bad = demo_http.post("/streams/add", json={"symbol": "XRPUSDT", "interval": "7m"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "interval"]
    removed = demo_http.post("/streams/remove", json={"symbol": "XRPUSDT", "interval": "1m"})
    assert removed.status_code == 200 and removed.json()["status"] == "ok"
    many = demo_http.post("/symbols/add", json={"symbols": ["ADAUSDT"]}).json()
    assert many["status"] in ("ok", "partial") and many["summary"] and "ADAUSDT" in many["current_status"]["symbols"]


def test_real_agent_feeds_metrics_and_the_dashboard(demo_http: httpx.Client) -> None:
    def ingested() -> float:
        for line in demo_http.get("/metrics").text.splitlines():
            if line.startswith("tacore_klines_ingested_total "):
                return float(line.split()[1])
        return 0.0

    wait_until(lambda: ingested() > 0, 10, "klines ingested in /metrics")
    kline = wait_until(lambda: (k := demo_http.get("/dashboard/data").json()["kline"])["symbols"] and k, 5,
                       "the dashboard's market data")
    rows = {row["symbol"]: row for row in kline["symbols"]}
    assert set(rows) >= DEMO_SYMBOLS
    assert rows["BTCUSDT"]["intervals"] == ["1m", "5m", "15m", "30m", "1h", "4h", "1d"]
    assert rows["BTCUSDT"]["last_update"] is not None


def test_market_and_klines_endpoints_answer_from_the_data_agent(demo_http: httpx.Client) -> None:
    entry = wait_until(lambda: (e := demo_http.get("/market/btcusdt").json()).get("status") == "ok" and e, 10,
                       "BTCUSDT market data over HTTP")
    assert entry["symbol"] == "BTCUSDT" and entry["price"] > 0
    page = demo_http.get("/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": 3}).json()
    assert page["symbol"] == "BTCUSDT" and page["interval"] == "1m" and 1 <= page["count"] <= 3
    assert [c["open_time"] for c in page["candles"]] == sorted(c["open_time"] for c in page["candles"])
    bad = demo_http.get("/klines", params={"symbol": "BTCUSDT", "interval": "7m"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "interval"]
    huge = demo_http.get("/klines", params={"symbol": "BTCUSDT", "start": 2**63})
    assert huge.status_code == 422
    assert demo_http.get("/market/NOTHING1USDT").json() == {"symbol": "NOTHING1USDT", "market": "CRYPTO",
                                                            "status": "no_data"}
    with httpx.Client(base_url=str(demo_http.base_url)) as anon:
        assert anon.get("/market/BTCUSDT").status_code == 401


def test_the_demo_serves_both_markets_with_history(demo: Service) -> None:
    """The design document's example, ``get.market_data`` for AAPL, GOOGL and MSFT, finds data in the demo
    (the US streams are quiet outside NYSE hours, their history is there)."""
    from clients import LazyPirateClient

    with LazyPirateClient(demo.frontend, timeout_ms=10_000, retries=0) as client:
        def us_data() -> dict[str, Any] | None:
            data: dict[str, Any] = client.call("get.market_data", {"symbols": ["AAPL", "GOOGL", "MSFT"]})
            return data if not data["no_data"] else None

        data = wait_until(us_data, 60, "market data for AAPL, GOOGL, MSFT")
        assert all(entry["price"] > 0 for entry in data["symbols"].values())
        status = client.call("kline.status", {})
        assert set(status["markets"]["US"]) >= DEMO_US_SYMBOLS and set(status["markets"]["CRYPTO"]) >= DEMO_SYMBOLS
        assert status["feeds"]["alpaca"]["state"] == "streaming"
        days = wait_until(lambda: (c := client.call("kline.history", {"symbol": "AAPL", "interval": "1d",
                                                                      "limit": 1000})["candles"])[999:] and c,
                          60, "AAPL's 1,000 daily candles")
        assert 100 < days[-1]["close"] < 1000  # four years of sessions at AAPL-like prices
