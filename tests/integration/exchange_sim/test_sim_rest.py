"""GET /api/v3/klines as Binance answers it, injected rate limits, and the /_sim/closed ground truth."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sim_helpers import collect, kline, row_of
from websockets.asyncio.client import connect

from tacore.exchange_sim import ExchangeSimulator

MINUTE = 60_000
START = 1_767_225_600_000  # 2026-01-01T00:00:00Z, simulated start for the deterministic tests


def _klines(sim: ExchangeSimulator, **params: Any) -> httpx.Response:
    return httpx.get(f"{sim.rest_url}/api/v3/klines", params=params)


@pytest.fixture
def slow_sim(make_sim: Any) -> ExchangeSimulator:
    """Real-time clock started at a known instant, so rows are predictable."""
    sim: ExchangeSimulator = make_sim(clock_speed=1.0, start_time_ms=START + 30 * MINUTE + 5_000)
    return sim


def test_klines_rows_have_binance_types_and_the_open_candle_last(slow_sim: ExchangeSimulator) -> None:
    reply = _klines(slow_sim, symbol="BTCUSDT", interval="1m", limit=5)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("application/json")
    assert "X-MBX-USED-WEIGHT-1M" in reply.headers
    rows = reply.json()
    assert [r[0] for r in rows] == [START + (26 + i) * MINUTE for i in range(5)]
    for row in rows:
        assert len(row) == 12
        assert [type(v) for v in row] == [int, str, str, str, str, str, int, str, int, str, str, str]
        assert row[6] == row[0] + MINUTE - 1 and row[11] == "0"
    assert float(rows[-1][5]) < float(rows[-2][5]) * 3  # the running candle is a partial one


def test_klines_without_limit_returns_500_and_caps_limit_at_1000(slow_sim: ExchangeSimulator) -> None:
    assert len(_klines(slow_sim, symbol="ETHUSDT", interval="1m").json()) == 500
    assert len(_klines(slow_sim, symbol="ETHUSDT", interval="1m", limit=5000).json()) == 1000


def test_klines_start_and_end_select_open_times_inclusively(slow_sim: ExchangeSimulator) -> None:
    rows = _klines(slow_sim, symbol="BTCUSDT", interval="5m", startTime=START - 1, endTime=START + 10 * MINUTE).json()
    assert [r[0] for r in rows] == [START, START + 5 * MINUTE, START + 10 * MINUTE]
    paged = _klines(slow_sim, symbol="BTCUSDT", interval="1m", startTime=START, limit=3).json()
    assert [r[0] for r in paged] == [START, START + MINUTE, START + 2 * MINUTE]
    ending = _klines(slow_sim, symbol="BTCUSDT", interval="1m", endTime=START + 2 * MINUTE, limit=2).json()
    assert [r[0] for r in ending] == [START + MINUTE, START + 2 * MINUTE]
    assert _klines(slow_sim, symbol="BTCUSDT", interval="1m", startTime=START + 10**9).json() == []


def test_history_from_before_the_simulator_started_is_the_same_on_every_run(make_sim: Any) -> None:
    a = make_sim(clock_speed=1.0, start_time_ms=START)
    b = make_sim(clock_speed=1.0, start_time_ms=START + 5 * 86_400_000)
    params = {"symbol": "SOLUSDT", "interval": "1h", "startTime": START - 86_400_000, "limit": 24}
    rows_a, rows_b = _klines(a, **params).json(), _klines(b, **params).json()
    assert len(rows_a) == 24 and rows_a == rows_b


def test_a_5m_row_aggregates_its_five_1m_rows(slow_sim: ExchangeSimulator) -> None:
    five = _klines(slow_sim, symbol="BNBUSDT", interval="5m", startTime=START, limit=1).json()[0]
    ones = _klines(slow_sim, symbol="BNBUSDT", interval="1m", startTime=START, limit=5).json()
    assert five[1] == ones[0][1] and five[4] == ones[-1][4]
    assert float(five[2]) == max(float(r[2]) for r in ones)
    assert float(five[3]) == min(float(r[3]) for r in ones)
    assert five[8] == sum(r[8] for r in ones)
    assert round(float(five[5]), 8) == round(sum(float(r[5]) for r in ones), 8)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"interval": "1m"}, -1102),
        ({"symbol": "BTCUSDT"}, -1102),
        ({"symbol": "BTCUSD", "interval": "1m"}, -1121),
        ({"symbol": "btcusdt", "interval": "1m"}, -1121),
        ({"symbol": "BTCUSDT", "interval": "7m"}, -1120),
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": "abc"}, -1100),
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": 0}, -1130),
        ({"symbol": "BTCUSDT", "interval": "1m", "startTime": 2, "endTime": 1}, -1023),
    ],
)
def test_bad_klines_requests_get_binance_error_codes_with_http_400(
    sim: ExchangeSimulator, params: dict[str, Any], code: int
) -> None:
    reply = _klines(sim, **params)
    assert reply.status_code == 400
    body = reply.json()
    assert set(body) == {"code", "msg"} and body["code"] == code


def test_invalid_symbol_message_is_binances(sim: ExchangeSimulator) -> None:
    assert _klines(sim, symbol="NOPE", interval="1m").json() == {"code": -1121, "msg": "Invalid symbol."}


@pytest.mark.parametrize("status", [429, 418])
def test_injected_rate_limit_fails_the_next_calls_with_retry_after_then_recovers(
    sim: ExchangeSimulator, status: int
) -> None:
    queued = httpx.post(f"{sim.rest_url}/_sim/rest_failures", json={"count": 2, "status": status, "retry_after": 3})
    assert queued.json() == {"pending": 2}
    for _ in range(2):
        reply = _klines(sim, symbol="BTCUSDT", interval="1m", limit=1)
        assert reply.status_code == status
        assert reply.headers["Retry-After"] == "3"
        assert reply.json()["code"] == -1003
    assert _klines(sim, symbol="BTCUSDT", interval="1m", limit=1).status_code == 200
    assert sim.stats()["rest_failures_injected"] == 2


def test_control_api_rejects_malformed_bodies(sim: ExchangeSimulator) -> None:
    reply = httpx.post(f"{sim.rest_url}/_sim/disconnect", json={"mode": "explode"})
    assert reply.status_code == 400
    reply = httpx.post(f"{sim.rest_url}/_sim/pause", json={"seconds": -1})
    assert reply.status_code == 400


async def test_ground_truth_lists_exactly_the_candles_streamed_closed_and_served_by_rest(
    sim: ExchangeSimulator,
) -> None:
    async with connect(f"{sim.ws_url}/ws/xrpusdt@kline_1m") as ws:
        messages = await collect(ws, 1.0)
    finals = [kline(m) for m in messages if kline(m)["x"]]
    assert len(finals) >= 5
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        truth = (
            await http.get(
                "/_sim/closed",
                params={"symbol": "XRPUSDT", "interval": "1m", "start": finals[0]["t"], "end": finals[-1]["t"]},
            )
        ).json()
        rest = (
            await http.get(
                "/api/v3/klines",
                params={"symbol": "XRPUSDT", "interval": "1m", "startTime": finals[0]["t"], "limit": len(finals)},
            )
        ).json()
    candles = truth["candles"]
    assert [c["open_time"] for c in candles] == [k["t"] for k in finals]
    for candle, k, row in zip(candles, finals, rest, strict=True):
        assert row == row_of(k)
        assert candle["closed"] is True
        assert [candle[f] for f in ("open", "high", "low", "close", "volume", "trades")] == [
            k["o"],
            k["h"],
            k["l"],
            k["c"],
            k["v"],
            k["n"],
        ]
        assert candle["taker_buy_quote_volume"] == k["Q"] and candle["quote_volume"] == k["q"]


def test_ground_truth_defaults_to_everything_closed_since_start(slow_sim: ExchangeSimulator) -> None:
    truth = httpx.get(f"{slow_sim.rest_url}/_sim/closed", params={"symbol": "BTCUSDT", "interval": "5m"}).json()
    # started 30m05s into the day at START, so the 5m candle opened at 30m is still running
    assert truth["candles"] == [] and truth["truncated"] is False
    since = httpx.get(
        f"{slow_sim.rest_url}/_sim/closed", params={"symbol": "BTCUSDT", "interval": "5m", "start": START}
    ).json()["candles"]
    assert [c["open_time"] for c in since] == [START + i * 5 * MINUTE for i in range(6)]


def test_ping_and_server_time_answer_on_the_simulated_clock(slow_sim: ExchangeSimulator) -> None:
    assert httpx.get(f"{slow_sim.rest_url}/api/v3/ping").json() == {}
    server_time = httpx.get(f"{slow_sim.rest_url}/api/v3/time").json()["serverTime"]
    assert START + 30 * MINUTE <= server_time < START + 31 * MINUTE


def test_request_weight_past_the_minutes_limit_is_refused_with_429_until_the_next_minute(
        make_sim: Any) -> None:
    sim: ExchangeSimulator = make_sim(rest_weight_per_min=7)
    used = [int(_klines(sim, symbol="BTCUSDT", interval="1m", limit=1).headers["X-MBX-USED-WEIGHT-1M"])
            for _ in range(3)]
    refused = _klines(sim, symbol="BTCUSDT", interval="1m", limit=1)
    stats = httpx.get(f"{sim.rest_url}/_sim/stats").json()
    if used != [2, 4, 6]:  # a minute boundary fell inside the burst: the count restarted, as on Binance
        pytest.skip(f"a new minute began during the test: {used}")
    assert refused.status_code == 429 and refused.json()["code"] == -1003
    assert 1 <= int(refused.headers["Retry-After"]) <= 60 and refused.headers["X-MBX-USED-WEIGHT-1M"] == "6"
    assert stats["rest_weight_refused"] == 1 and stats["rest_weight_max_per_min"] == 6
    assert httpx.get(f"{sim.rest_url}/api/v3/time").status_code == 200  # weight 1 still fits
