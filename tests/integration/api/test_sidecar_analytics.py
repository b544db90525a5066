"""The analytics endpoints (``/scan``, ``/risk``, ``/analysis/{symbol}``) against the real data agent of
``tacore serve --demo`` (its candles come from the exchange simulators, its ``ai`` answers from the LLM
simulator), and their error mapping against the stand-in agent that does not serve them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .sidecar_helpers import Service, wait_until

DEMO_CRYPTO = {"BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"}


@pytest.fixture(scope="module")
def ready(demo: Service) -> Service:
    """The demo once its history is stored (the daily candles of both markets are what these tests read)."""
    with demo.client() as http:
        wait_until(lambda: http.get("/scan", params={"market": "CRYPTO"}).json().get("scanned", 0) >= 4, 90,
                   "the demo's crypto candles in a scan")
        for symbol in ("AAPL", "GOOGL"):
            wait_until(lambda s=symbol: http.get("/klines", params={"symbol": s, "interval": "1d", "limit": 1000})
                       .json().get("count", 0) >= 1000, 90, f"{symbol}'s daily history")
    return demo


@pytest.fixture
def api(ready: Service) -> Any:
    with ready.client() as client:
        yield client


def test_scan_get_screens_a_market_with_simple_criteria(api: httpx.Client) -> None:
    reply = api.get("/scan", params={"market": "crypto", "price_min": 0.0001, "sort_by": "price", "order": "desc",
                                     "limit": 3, "exclude": "SOL.*"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["market"] == "CRYPTO" and body["quote_currency"] == "USDT" and body["timeframe"] == "1d"
    assert body["scanned"] >= len(DEMO_CRYPTO) - 1 and body["count"] == len(body["results"]) <= 3
    assert [f["source"] for f in body["filters"]] == ["criteria.filters.0"]
    assert "SOLUSDT" not in {r["symbol"] for r in body["results"]}
    prices = [r["values"]["price"] for r in body["results"]]
    assert prices == sorted(prices, reverse=True) and body["results"][0]["symbol"] == "BTCUSDT"


def test_scan_post_takes_the_design_payload_and_a_filter_chain(api: httpx.Client) -> None:
    design = api.post("/scan", json={"market": "US", "criteria": {"min_volume": 1_000_000, "price_range": [10, 500]}})
    assert design.status_code == 200, design.text
    assert design.json()["market"] == "US" and design.json()["quote_currency"] == "USD"
    assert [f["source"] for f in design.json()["filters"]] == ["criteria.min_volume", "criteria.price_range"]
    chain = api.post("/scan", json={"market": "CRYPTO", "criteria": {
        "filters": [{"field": "rsi", "op": "in_range", "value": [0, 100]},
                    {"field": "price", "op": "above%", "value": [{"field": "sma", "period": 5}, -90]}],
        "sort_by": "rsi", "include": ["BTC.*", "ETH.*"]}})
    assert chain.status_code == 200, chain.text
    body = chain.json()
    assert {r["symbol"] for r in body["results"]} <= {"BTCUSDT", "ETHUSDT"} and body["matched"] >= 1
    assert all(value is not None for r in body["results"] for key, value in r["values"].items() if "rsi" in key)
    assert [f["source"] for f in body["filters"]] == ["criteria.filters.0", "criteria.filters.1"]


def test_bad_scans_are_422_naming_the_field(api: httpx.Client) -> None:
    bad_sort = api.get("/scan", params={"sort_by": "colour"})
    assert bad_sort.status_code == 422 and bad_sort.json()["detail"][0]["loc"][:2] == ["query", "sort_by"]
    bad_range = api.get("/scan", params={"price_min": 500, "price_max": 10})
    assert bad_range.status_code == 422
    assert bad_range.json()["detail"][0]["loc"] == ["query", "criteria", "price_range"]
    bad_chain = api.post("/scan", json={"criteria": {"filters": [{"field": "rsi", "op": "in_range", "value": [1]}]}})
    assert bad_chain.status_code == 422
    assert bad_chain.json()["detail"][0]["loc"] == ["body", "criteria", "filters", 0, "value"]
    unknown = api.get("/scan", params={"market": "MOON"})  # only the agent knows the markets
    assert unknown.status_code == 422, unknown.text
    detail = unknown.json()["detail"][0]
    assert detail["loc"] == ["query", "market"] and "CRYPTO" in detail["msg"] and "US" in detail["msg"]


def test_risk_get_and_post_answer_the_books_figures(api: httpx.Client) -> None:
    reply = api.get("/risk", params={"portfolio": "BTCUSDT:0.5,ETHUSDT:4", "horizon": 5, "confidence": [0.9, 0.99]})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "ok" and [p["symbol"] for p in body["positions"]] == ["BTCUSDT", "ETHUSDT"]
    assert body["positions"][0]["quantity"] == "0.5" and body["horizon_bars"] == 5
    assert [v["confidence"] for v in body["var"]] == [0.9, 0.99] and body["volatility"]["annualised"] > 0
    design = api.post("/risk", json={"portfolio": {"AAPL": 100, "GOOGL": 50}})
    assert design.status_code == 200, design.text
    assert design.json()["status"] == "ok" and design.json()["currency"] == "USD"
    weights = api.get("/risk", params=[("weights", "BTCUSDT:0.6"), ("weights", "SOLUSDT:0.4"), ("notional", "1000")])
    assert weights.status_code == 200 and weights.json()["weighting"] == "weight", weights.text


def test_bad_risk_requests_are_422_naming_the_field(api: httpx.Client) -> None:
    malformed = api.get("/risk", params={"portfolio": "AAPL"})
    assert malformed.status_code == 422 and malformed.json()["detail"][0]["loc"] == ["query", "portfolio"]
    empty = api.get("/risk")
    assert empty.status_code == 422 and "portfolio" in empty.json()["detail"][0]["msg"]
    both = api.post("/risk", json={"portfolio": {"AAPL": 1}, "weights": {"MSFT": 1}})
    assert both.status_code == 422 and both.json()["detail"][0]["loc"][0] == "body"
    zero = api.post("/risk", json={"portfolio": {"AAPL": 0}})
    assert zero.status_code == 422 and zero.json()["detail"][0]["loc"] == ["body", "portfolio"]


def test_analysis_answers_technical_and_ai(api: httpx.Client) -> None:
    reply = api.get("/analysis/btcusdt", params={"interval": "1h", "limit": 300})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["symbol"], body["analysis_type"], body["interval"], body["status"]) == \
        ("BTCUSDT", "technical", "1h", "ok")
    assert body["candles"]["used"] == 300 and body["signal"]["action"] in ("buy", "hold", "sell")
    assert 0 <= body["indicators"]["rsi_14"] <= 100
    ai = api.get("/analysis/ETHUSDT", params={"analysis_type": "ai", "interval": "1d"}, timeout=120)
    assert ai.status_code == 200, ai.text
    assert ai.json()["analysis_type"] == "ai" and ai.json()["recommendation"]["action"] in ("buy", "hold", "sell")


def test_bad_analysis_requests_are_422(api: httpx.Client) -> None:
    kind = api.get("/analysis/AAPL", params={"analysis_type": "astrology"})
    assert kind.status_code == 422 and kind.json()["detail"][0]["loc"] == ["query", "analysis_type"]
    symbol = api.get("/analysis/A$PL")
    assert symbol.status_code == 422 and symbol.json()["detail"][0]["loc"][:2] == ["path", "symbol"]
    limit = api.get("/analysis/AAPL", params={"limit": 0})
    assert limit.status_code == 422 and limit.json()["detail"][0]["loc"] == ["query", "limit"]


def test_analytics_endpoints_need_the_key_and_are_in_the_schema(api: httpx.Client) -> None:
    with httpx.Client(base_url=str(api.base_url)) as anon:
        for method, path in (("GET", "/scan"), ("POST", "/scan"), ("GET", "/risk?portfolio=AAPL:1"),
                             ("POST", "/risk"), ("GET", "/analysis/AAPL")):
            assert anon.request(method, path, json={}).status_code == 401, (method, path)
    paths = api.get("/openapi.json").json()["paths"]
    for path, methods in (("/scan", ("get", "post")), ("/risk", ("get", "post")), ("/analysis/{symbol}", ("get",))):
        assert set(paths[path]) == set(methods)
        for method in methods:
            assert {"200", "401", "422", "502", "503"} <= set(paths[path][method]["responses"]), (path, method)


def test_analytics_are_503_when_no_agent_serves_them(http: httpx.Client) -> None:
    """The stand-in agent serves kline.* only: the broker answers UNKNOWN_METHOD, the sidecar a 503 naming
    the data agent (as for the market reads)."""
    wait_until(lambda: http.get("/ping").status_code == 200, 10, "the stand-in agent in the sampler's view")
    for method, path, body in (("GET", "/scan", None), ("POST", "/risk", {"portfolio": {"AAPL": 1}}),
                               ("GET", "/analysis/AAPL", None)):
        reply = http.request(method, path, json=body)
        assert reply.status_code == 503, (path, reply.text)
        assert reply.json()["component"] == "data_agent" and "UNKNOWN_METHOD" in reply.json()["detail"]
