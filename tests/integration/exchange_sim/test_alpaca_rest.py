"""The simulator's Alpaca market-data REST API over real HTTP: formats, paging, keys, rate limit, faults."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from tacore.exchange_sim import ExchangeSimulator

KEYS = {"APCA-API-KEY-ID": "SIMKEYID", "APCA-API-SECRET-KEY": "SIMSECRETKEY"}


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


IN_SESSION = ms("2024-07-02T15:00:00")  # Tuesday 11:00 New York


@pytest.fixture
def alpaca(make_sim: Callable[..., ExchangeSimulator]) -> ExchangeSimulator:
    return make_sim(clock_speed=1.0, start_time_ms=IN_SESSION)


def get(sim: ExchangeSimulator, path: str, headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
    return httpx.get(sim.alpaca_rest_url + path, params=params, headers=KEYS if headers is None else headers,
                     timeout=20)


def test_multi_symbol_bars_have_alpacas_exact_shape(alpaca: ExchangeSimulator) -> None:
    reply = get(alpaca, "/v2/stocks/bars", symbols="MSFT,AAPL,NOTLISTED", timeframe="1Day", start="2024-06-27",
                end="2024-06-28")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert list(body) == ["bars", "next_page_token"] and body["next_page_token"] is None
    assert list(body["bars"]) == ["AAPL", "MSFT"]  # alphabetical; unknown symbols are left out
    bar = body["bars"]["AAPL"][0]
    assert list(bar) == ["t", "o", "h", "l", "c", "v", "n", "vw"]
    assert bar["t"] == "2024-06-27T04:00:00Z"  # New York midnight of the session's date
    assert isinstance(bar["v"], int) and isinstance(bar["n"], int) and isinstance(bar["vw"], float)
    assert bar["l"] <= bar["o"] <= bar["h"] and bar["l"] <= bar["vw"] <= bar["h"]
    assert 10_000_000 < bar["v"] < 200_000_000
    # the server's clock is the simulated one, the rate headers are Alpaca's
    assert abs(parsedate_to_datetime(reply.headers["date"]).timestamp() * 1000 - IN_SESSION) < 60_000
    assert reply.headers["x-ratelimit-limit"] == "200" and int(reply.headers["x-ratelimit-remaining"]) < 200
    assert int(reply.headers["x-ratelimit-reset"]) > 0


def test_single_symbol_route_latest_bars_and_currency(alpaca: ExchangeSimulator) -> None:
    body = get(alpaca, "/v2/stocks/AAPL/bars", timeframe="1H", start="2024-07-01", limit=2, currency="USD").json()
    assert list(body) == ["bars", "symbol", "next_page_token", "currency"]
    assert body["symbol"] == "AAPL" and body["currency"] == "USD" and len(body["bars"]) == 2
    assert [b["t"] for b in body["bars"]] == ["2024-07-01T13:00:00Z", "2024-07-01T14:00:00Z"]
    token = base64.b64decode(body["next_page_token"]).decode()
    assert token == "AAPL|H|2024-07-01T14:00:00.000000000Z"
    empty = get(alpaca, "/v2/stocks/NOPE/bars", timeframe="1Day").json()
    assert empty == {"bars": None, "symbol": "NOPE", "next_page_token": None}
    latest = get(alpaca, "/v2/stocks/bars/latest", symbols="AAPL,TSLA,NOPE").json()
    assert list(latest["bars"]) == ["AAPL", "TSLA"]
    t = datetime.fromisoformat(latest["bars"]["AAPL"]["t"].replace("Z", "+00:00")).timestamp() * 1000
    assert IN_SESSION - 120_000 <= t < IN_SESSION + 60_000  # the minute that just closed
    assert get(alpaca, "/v2/stocks/NOPE/bars/latest").status_code == 404


def test_paging_over_many_pages_returns_every_closed_bar_once(alpaca: ExchangeSimulator) -> None:
    seen: list[tuple[str, str]] = []
    token, pages = None, 0
    while True:
        params = {"symbols": "AAPL,MSFT,NVDA", "timeframe": "1Min", "start": "2024-06-24T13:30:00Z",
                  "end": "2024-06-28T20:00:00Z", "limit": 400, "feed": "iex"}
        if token:
            params["page_token"] = token
        body = get(alpaca, "/v2/stocks/bars", **params).json()
        pages += 1
        assert sum(len(v) for v in body["bars"].values()) <= 400
        seen += [(s, b["t"]) for s, bars in body["bars"].items() for b in bars]
        token = body["next_page_token"]
        if token is None:
            break
    assert len(seen) == 3 * 5 * 390 and pages == 15  # 5 full sessions of 3 symbols
    assert len(set(seen)) == len(seen) and seen == sorted(seen)
    # the same minutes as TACore candles in the ground truth, field by field
    truth = httpx.get(alpaca.rest_url + "/_sim/alpaca/closed", params={
        "symbol": "NVDA", "interval": "1m", "feed": "iex", "start": ms("2024-06-24T13:30:00"),
        "end": ms("2024-06-28T20:00:00")}).json()["candles"]
    assert [c["open_time"] for c in truth] == [ms(t.replace("Z", "")) for s, t in seen if s == "NVDA"]


def test_aggregates_over_http_equal_the_minutes(alpaca: ExchangeSimulator) -> None:
    minutes = get(alpaca, "/v2/stocks/TSLA/bars", timeframe="1Min", start="2024-07-01T14:00:00Z",
                  end="2024-07-01T14:59:00Z").json()["bars"]
    hour = get(alpaca, "/v2/stocks/TSLA/bars", timeframe="1H", start="2024-07-01T14:00:00Z",
               end="2024-07-01T14:00:00Z").json()["bars"][0]
    assert len(minutes) == 60
    assert hour["o"] == minutes[0]["o"] and hour["c"] == minutes[-1]["c"]
    assert hour["h"] == max(m["h"] for m in minutes) and hour["l"] == min(m["l"] for m in minutes)
    assert hour["v"] == sum(m["v"] for m in minutes) and hour["n"] == sum(m["n"] for m in minutes)
    assert abs(hour["vw"] * hour["v"] - sum(m["vw"] * m["v"] for m in minutes)) < hour["v"] * 1e-6


def test_missing_or_wrong_keys_are_401(alpaca: ExchangeSimulator) -> None:
    missing = get(alpaca, "/v2/stocks/bars", headers={}, symbols="AAPL", timeframe="1Day")
    assert missing.status_code == 401
    assert missing.json() == {"code": 40110000, "message": "request is not authorized"}
    wrong = get(alpaca, "/v2/stocks/bars", headers={**KEYS, "APCA-API-SECRET-KEY": "nope"}, symbols="AAPL",
                timeframe="1Day")
    assert wrong.status_code == 401 and wrong.json()["code"] == 40110000
    assert "access key verification failed" in wrong.json()["message"]


def test_bad_parameters_answer_400_and_the_server_keeps_serving(alpaca: ExchangeSimulator) -> None:
    bad = get(alpaca, "/v2/stocks/bars", symbols="AAPL", timeframe="1Minute")
    assert bad.status_code == 400 and bad.json() == {"code": 40010001, "message": "invalid timeframe"}
    assert get(alpaca, "/v2/stocks/bars", symbols="AAPL", timeframe="1Day", limit=0).status_code == 400
    backwards = get(alpaca, "/v2/stocks/bars", symbols="AAPL", timeframe="1Day", start="2024-07-02",
                    end="2024-07-01")
    assert backwards.json()["message"] == "end should not be before start"
    assert get(alpaca, "/v2/stocks/bars", symbols="AAPL", timeframe="1Day").status_code == 200


def test_rate_limit_answers_429_until_the_window_resets(make_sim: Callable[..., ExchangeSimulator]) -> None:
    sim = make_sim(clock_speed=1.0, start_time_ms=IN_SESSION, alpaca_rate_limit=3)
    codes = [get(sim, "/v2/stocks/bars", symbols="AAPL", timeframe="1Day").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = get(sim, "/v2/stocks/bars", symbols="AAPL", timeframe="1Day")
    assert limited.json() == {"code": 42910000, "message": "rate limit exceeded"}
    assert limited.headers["x-ratelimit-remaining"] == "0" and limited.headers["x-ratelimit-limit"] == "3"
    stats = httpx.get(sim.rest_url + "/_sim/stats").json()["alpaca"]
    assert stats["rest_rate_limited"] == 2
    httpx.post(sim.rest_url + "/_sim/reset_limits", json={})
    assert get(sim, "/v2/stocks/bars", symbols="AAPL", timeframe="1Day").status_code == 200


def test_injected_faults_fail_the_next_calls(alpaca: ExchangeSimulator) -> None:
    queued = httpx.post(alpaca.rest_url + "/_sim/rest_failures",
                        json={"api": "alpaca", "count": 2, "status": 500}).json()
    assert queued == {"pending": 2}
    httpx.post(alpaca.rest_url + "/_sim/rest_failures", json={"api": "alpaca", "count": 1, "status": 429,
                                                             "retry_after": 2})
    first = get(alpaca, "/v2/stocks/bars", symbols="AAPL", timeframe="1Day")
    assert first.status_code == 500 and first.json()["code"] == 50010000
    assert get(alpaca, "/v2/stocks/bars", symbols="AAPL", timeframe="1Day").status_code == 500
    throttled = get(alpaca, "/v2/stocks/bars", symbols="AAPL", timeframe="1Day")
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "2"
    assert get(alpaca, "/v2/stocks/bars", symbols="AAPL", timeframe="1Day").status_code == 200
    # Binance's klines are untouched by Alpaca faults
    assert httpx.get(alpaca.rest_url + "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m",
                                                                  "limit": 1}).status_code == 200


def test_an_iex_only_plan_gets_403_for_recent_sip(make_sim: Callable[..., ExchangeSimulator]) -> None:
    sim = make_sim(clock_speed=1.0, start_time_ms=IN_SESSION, alpaca_sip=False)
    recent = get(sim, "/v2/stocks/bars", symbols="AAPL", timeframe="1Min", feed="sip", start="2024-07-02",
                 end="2024-07-02T14:59:00Z")
    assert recent.status_code == 403
    assert recent.json()["message"] == "subscription does not permit querying recent SIP data"
    assert get(sim, "/v2/stocks/bars", symbols="AAPL", timeframe="1Day", feed="sip", start="2024-06-01",
               end="2024-06-30").status_code == 200
    default = get(sim, "/v2/stocks/bars", symbols="AAPL", timeframe="1Min", start="2024-07-02").json()
    assert default["bars"]["AAPL"][-1]["v"] < 100_000  # IEX volumes by default
