"""The spot API's limits and faults: request weight per minute (429 with Retry-After, then a 418 ban
for a client that does not back off), new orders per 10 s (-1015), faults injected by the control API,
and order answers lost or delayed after the order was carried out."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from spot_helpers import RawSpot, add_account, ground_truth

from tacore.exchange_sim import ExchangeSimulator, SimConfig


@pytest.fixture
def small_sim() -> Iterator[ExchangeSimulator]:
    with ExchangeSimulator(SimConfig(alpaca=False, spot_weight_limit=60, spot_orders_per_10s=3)) as running:
        yield running


@pytest.fixture
def spot(small_sim: ExchangeSimulator) -> Iterator[RawSpot]:
    key, secret = add_account(small_sim.rest_url, {"USDT": "100000", "BTC": "1"})
    client = RawSpot(small_sim.rest_url, key, secret)
    yield client
    client.close()


def test_weight_over_the_minute_limit_is_429_with_retry_after_then_a_418_ban(
        small_sim: ExchangeSimulator, spot: RawSpot) -> None:
    first = spot.call("GET", "/api/v3/account")  # weight 20
    assert first.status_code == 200 and first.headers["X-MBX-USED-WEIGHT-1M"] == "20"
    statuses = [spot.call("GET", "/api/v3/account").status_code for _ in range(2)]
    assert statuses == [200, 200]
    limited = spot.call("GET", "/api/v3/account")  # 80 > 60
    assert limited.status_code == 429 and limited.json()["code"] == -1003
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "request weight per 1 MINUTE" in limited.json()["msg"]
    answers = [spot.call("GET", "/api/v3/order", symbol="BTCUSDT", orderId=1).status_code for _ in range(4)]
    assert answers == [429, 429, 429, 418]  # kept sending while told to wait
    banned = spot.call("GET", "/api/v3/account")
    assert banned.status_code == 418 and "IP banned until" in banned.json()["msg"]
    assert int(banned.headers["Retry-After"]) >= 60
    stats = httpx.get(f"{small_sim.rest_url}/_sim/stats").json()["spot"]
    assert stats["rate_limited"] >= 4 and stats["banned"] >= 2


def test_injected_faults_answer_429_418_and_5xx_with_binance_bodies(
        small_sim: ExchangeSimulator, spot: RawSpot) -> None:
    url = small_sim.rest_url
    assert httpx.post(f"{url}/_sim/rest_failures", json={"api": "spot", "status": 429, "retry_after": 7}).json() == {
        "pending": 1}
    limited = spot.call("GET", "/api/v3/openOrders", symbol="BTCUSDT")
    assert (limited.status_code, limited.headers["Retry-After"], limited.json()["code"]) == (429, "7", -1003)
    assert spot.call("GET", "/api/v3/openOrders", symbol="BTCUSDT").status_code == 429  # still limited
    httpx.post(f"{url}/_sim/reset_limits", json={})
    httpx.post(f"{url}/_sim/rest_failures", json={"api": "spot", "status": 418, "retry_after": 30})
    banned = spot.call("GET", "/api/v3/openOrders", symbol="BTCUSDT")
    assert (banned.status_code, banned.headers["Retry-After"]) == (418, "30")
    httpx.post(f"{url}/_sim/reset_limits", json={})
    httpx.post(f"{url}/_sim/rest_failures", json={"api": "spot", "status": 500, "count": 1})
    failed = spot.call("GET", "/api/v3/openOrders", symbol="BTCUSDT")
    assert (failed.status_code, failed.json()["code"]) == (500, -1000)
    assert spot.call("GET", "/api/v3/openOrders", symbol="BTCUSDT").status_code == 200


def test_too_many_new_orders_is_1015(small_sim: ExchangeSimulator, spot: RawSpot) -> None:
    for _ in range(3):
        placed = spot.call("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")
        assert placed.status_code == 200
    assert placed.headers["X-MBX-ORDER-COUNT-10S"] == "3"
    refused = spot.call("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")
    assert (refused.status_code, refused.json()["code"]) == (429, -1015)
    assert "orders per 10 SECOND" in refused.json()["msg"] and int(refused.headers["Retry-After"]) >= 1
    assert len(ground_truth(small_sim.rest_url, spot.api_key)["orders"]) == 3


def test_a_delayed_answer_arrives_after_the_order_was_carried_out(small_sim: ExchangeSimulator, spot: RawSpot) -> None:
    url = small_sim.rest_url
    httpx.post(f"{url}/_sim/spot/reply_faults", json={"mode": "delay", "seconds": 2})
    impatient = httpx.Client(base_url=url, timeout=0.5)
    query = spot.query({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001",
                        "newClientOrderId": "lost-1"})
    with pytest.raises(httpx.ReadTimeout):
        impatient.post(f"/api/v3/order?{query}", headers={"X-MBX-APIKEY": spot.api_key})
    impatient.close()
    found = spot.ok("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="lost-1")
    assert found["status"] == "FILLED"
    assert [o["clientOrderId"] for o in ground_truth(url, spot.api_key)["orders"]] == ["lost-1"]


def test_an_unknown_outcome_answer_is_503_1007_and_the_order_exists(
        small_sim: ExchangeSimulator, spot: RawSpot) -> None:
    url = small_sim.rest_url
    httpx.post(f"{url}/_sim/spot/reply_faults", json={"mode": "unknown"})
    answer = spot.call("POST", "/api/v3/order", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.001",
                       newClientOrderId="unknown-1")
    assert (answer.status_code, answer.json()["code"]) == (503, -1007)
    assert spot.ok("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="unknown-1")["status"] == "FILLED"
    stats = httpx.get(f"{url}/_sim/stats").json()["spot"]
    assert stats["replies_lost"] == 1
