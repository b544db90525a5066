"""The simulator's Binance spot trading API over HTTP: each endpoint's exact format, SIGNED request
security, the order endpoint's parameter checks, filters and matching-engine refusals, with their codes."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from spot_helpers import RawSpot, add_account, ground_truth, new_key

from tacore.exchange_sim import ExchangeSimulator, SimConfig

D = Decimal
ORDER_KEYS = ["symbol", "orderId", "orderListId", "clientOrderId", "transactTime"]
RESULT_KEYS = [*ORDER_KEYS, "price", "origQty", "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty", "status",
               "timeInForce", "type", "side", "workingTime", "selfTradePreventionMode"]
QUERY_KEYS = ["symbol", "orderId", "orderListId", "clientOrderId", "price", "origQty", "executedQty",
              "cummulativeQuoteQty", "status", "timeInForce", "type", "side", "time", "updateTime", "isWorking",
              "workingTime", "origQuoteOrderQty", "selfTradePreventionMode"]


@pytest.fixture(scope="module")
def sim() -> Iterator[ExchangeSimulator]:
    with ExchangeSimulator(SimConfig(alpaca=False, clock_speed=1.0, seed=3)) as running:
        yield running


@pytest.fixture
def spot(sim: ExchangeSimulator) -> Iterator[RawSpot]:
    key, secret = add_account(sim.rest_url, {"USDT": "100000", "BTC": "2"})
    client = RawSpot(sim.rest_url, key, secret)
    yield client
    client.close()
    httpx.post(f"{sim.rest_url}/_sim/reset_limits", json={})
    httpx.post(f"{sim.rest_url}/_sim/clock", json={"skew_ms": 0})


def price_of(sim: ExchangeSimulator, symbol: str = "BTCUSDT") -> Decimal:
    return sim.call(sim.spot.engine.price, symbol)  # type: ignore[no-any-return]


def error(response: httpx.Response) -> tuple[int, int, str]:
    body = response.json()
    assert list(body) == ["code", "msg"]
    return response.status_code, body["code"], body["msg"]


# -- exchangeInfo ---------------------------------------------------------------------------------------------
def test_exchange_info_lists_the_symbol_with_binance_filters(sim: ExchangeSimulator) -> None:
    response = httpx.get(f"{sim.rest_url}/api/v3/exchangeInfo", params={"symbol": "BTCUSDT"})
    assert response.status_code == 200 and response.headers["X-MBX-USED-WEIGHT-1M"].isdigit()
    body = response.json()
    assert list(body) == ["timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols"]
    assert {r["rateLimitType"] for r in body["rateLimits"]} == {"REQUEST_WEIGHT", "ORDERS", "RAW_REQUESTS"}
    (info,) = body["symbols"]
    assert (info["symbol"], info["status"], info["baseAsset"], info["quoteAsset"]) == ("BTCUSDT", "TRADING", "BTC",
                                                                                        "USDT")
    filters = {f["filterType"]: f for f in info["filters"]}
    assert filters["PRICE_FILTER"] == {"filterType": "PRICE_FILTER", "minPrice": "0.01000000",
                                       "maxPrice": "10000000.00000000", "tickSize": "0.01000000"}
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert filters["NOTIONAL"]["minNotional"] == "5.00000000" and filters["NOTIONAL"]["applyMinToMarket"] is True
    assert "MARKET" in info["orderTypes"] and "STOP_LOSS_LIMIT" in info["orderTypes"]


def test_exchange_info_without_a_symbol_lists_several_and_refuses_unknown_ones(sim: ExchangeSimulator) -> None:
    body = httpx.get(f"{sim.rest_url}/api/v3/exchangeInfo").json()
    assert {"BTCUSDT", "ETHUSDT", "ETHBTC"} <= {s["symbol"] for s in body["symbols"]}
    some = httpx.get(f"{sim.rest_url}/api/v3/exchangeInfo", params={"symbols": '["ETHUSDT","BTCUSDT"]'}).json()
    assert [s["symbol"] for s in some["symbols"]] == ["ETHUSDT", "BTCUSDT"]
    bad = httpx.get(f"{sim.rest_url}/api/v3/exchangeInfo", params={"symbol": "NOPE"})
    assert error(bad) == (400, -1121, "Invalid symbol.")


# -- orders: formats --------------------------------------------------------------------------------------------
def test_market_order_full_answer_fills_at_the_current_price_and_takes_commission_in_base(
        sim: ExchangeSimulator, spot: RawSpot) -> None:
    before = price_of(sim)
    body = spot.ok("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01",
                   newClientOrderId="m-1")
    assert list(body) == [*RESULT_KEYS, "fills"]
    assert (body["clientOrderId"], body["status"], body["executedQty"], body["type"]) == (
        "m-1", "FILLED", "0.01000000", "MARKET")
    (fill,) = body["fills"]
    assert list(fill) == ["price", "qty", "commission", "commissionAsset", "tradeId"]
    price = D(fill["price"])
    assert abs(price - before) / before < D("0.01")
    assert (fill["qty"], fill["commission"], fill["commissionAsset"]) == ("0.01000000", "0.00001000", "BTC")
    assert D(body["cummulativeQuoteQty"]) == price * D("0.01")
    balances = {b["asset"]: b for b in spot.ok("GET", "/api/v3/account")["balances"]}
    assert D(balances["BTC"]["free"]) == D("2.00999")
    assert D(balances["USDT"]["free"]) == D(100000) - price * D("0.01")


def test_response_types_ack_result_full_have_binance_keys(sim: ExchangeSimulator, spot: RawSpot) -> None:
    low = (price_of(sim) * D("0.8")).quantize(D("0.01"))
    kinds = {}
    for kind in ("ACK", "RESULT", "FULL"):
        kinds[kind] = spot.ok("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                              quantity="0.001", price=str(low), newOrderRespType=kind)
    assert list(kinds["ACK"]) == ORDER_KEYS
    assert list(kinds["RESULT"]) == RESULT_KEYS
    assert list(kinds["FULL"]) == [*RESULT_KEYS, "fills"] and kinds["FULL"]["fills"] == []
    assert kinds["RESULT"]["status"] == "NEW" and kinds["RESULT"]["price"] == f"{low}000000"
    assert len(kinds["ACK"]["clientOrderId"]) == 22  # made up by the exchange when none is sent


def test_query_open_orders_and_cancel_answer_in_binance_shapes(sim: ExchangeSimulator, spot: RawSpot) -> None:
    low = (price_of(sim) * D("0.8")).quantize(D("0.01"))
    placed = spot.ok("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                     quantity="0.01", price=str(low), newClientOrderId="rest-1")
    by_client = spot.ok("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="rest-1")
    by_id = spot.ok("GET", "/api/v3/order", symbol="BTCUSDT", orderId=placed["orderId"])
    assert by_client == by_id and list(by_client) == QUERY_KEYS
    assert (by_client["status"], by_client["isWorking"]) == ("NEW", True)
    (listed,) = spot.ok("GET", "/api/v3/openOrders")
    assert listed == by_client
    account = {b["asset"]: b for b in spot.ok("GET", "/api/v3/account")["balances"]}
    assert D(account["USDT"]["locked"]) == low * D("0.01")
    canceled = spot.ok("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="rest-1")
    assert list(canceled) == ["symbol", "origClientOrderId", "orderId", "orderListId", "clientOrderId",
                              "transactTime", "price", "origQty", "executedQty", "origQuoteOrderQty",
                              "cummulativeQuoteQty", "status", "timeInForce", "type", "side",
                              "selfTradePreventionMode"]
    assert (canceled["status"], canceled["origClientOrderId"]) == ("CANCELED", "rest-1")
    assert spot.ok("GET", "/api/v3/openOrders", symbol="BTCUSDT") == []
    assert D({b["asset"]: b for b in spot.ok("GET", "/api/v3/account")["balances"]}["USDT"]["locked"]) == 0
    assert error(spot.call("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="rest-1")) == (
        400, -2011, "Unknown order sent.")
    assert error(spot.call("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="nope")) == (
        400, -2013, "Order does not exist.")
    assert error(spot.call("GET", "/api/v3/order", symbol="BTCUSDT"))[1] == -1102


def test_my_trades_lists_an_order_s_trades(sim: ExchangeSimulator, spot: RawSpot) -> None:
    placed = spot.ok("POST", "/api/v3/order", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.1")
    rows = spot.ok("GET", "/api/v3/myTrades", symbol="BTCUSDT", orderId=placed["orderId"])
    assert [list(r) for r in rows] == [["symbol", "id", "orderId", "orderListId", "price", "qty", "quoteQty",
                                        "commission", "commissionAsset", "time", "isBuyer", "isMaker",
                                        "isBestMatch"]]
    (row,) = rows
    assert (row["isBuyer"], row["isMaker"], row["commissionAsset"]) == (False, False, "USDT")
    assert D(row["commission"]) == (D(row["quoteQty"]) * D("0.001")).quantize(D("0.00000001"))
    assert row["id"] == placed["fills"][0]["tradeId"]
    assert error(spot.call("GET", "/api/v3/myTrades", symbol="BTCUSDT", limit=0))[1] == -1130


def test_params_in_the_body_are_signed_with_the_query(sim: ExchangeSimulator, spot: RawSpot) -> None:
    response = spot.call("POST", "/api/v3/order", body=True, symbol="BTCUSDT", side="BUY", type="MARKET",
                         quantity="0.001")
    assert response.status_code == 200, response.text


# -- request security ---------------------------------------------------------------------------------------------
def test_api_key_errors(sim: ExchangeSimulator, spot: RawSpot) -> None:
    assert error(spot.http.get("/api/v3/account?timestamp=1&signature=00")) == (401, -2014, "API-key format invalid.")
    assert error(spot.call("GET", "/api/v3/account", key="short"))[:2] == (401, -2014)
    assert error(spot.call("GET", "/api/v3/account", key=new_key())) == (
        401, -2015, "Invalid API-key, IP, or permissions for action.")
    key, secret = add_account(sim.rest_url, {"USDT": "100"}, can_trade=False)
    reader = RawSpot(sim.rest_url, key, secret)
    assert reader.ok("GET", "/api/v3/account")["canTrade"] is False
    assert error(reader.call("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET",
                             quantity="0.001"))[:2] == (401, -2015)


def test_a_wrong_signature_is_1022(sim: ExchangeSimulator, spot: RawSpot) -> None:
    forger = RawSpot(sim.rest_url, spot.api_key, new_key())
    assert error(forger.call("GET", "/api/v3/account")) == (400, -1022, "Signature for this request is not valid.")
    tampered = spot.query({"symbol": "BTCUSDT"}).replace("BTCUSDT", "ETHUSDT")
    response = spot.http.get(f"/api/v3/openOrders?{tampered}", headers={"X-MBX-APIKEY": spot.api_key})
    assert error(response)[1] == -1022


def test_timestamps_outside_the_window_are_1021(sim: ExchangeSimulator, spot: RawSpot) -> None:
    now = spot.now()
    assert error(spot.call("GET", "/api/v3/account", timestamp=now + 3_000)) == (
        400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    assert error(spot.call("GET", "/api/v3/account", timestamp=now - 7_000)) == (
        400, -1021, "Timestamp for this request is outside of the recvWindow.")
    assert spot.call("GET", "/api/v3/account", timestamp=now - 7_000, recv_window=10_000).status_code == 200
    assert error(spot.call("GET", "/api/v3/account", recv_window=60_001))[:2] == (400, -1102)
    assert error(spot.http.get("/api/v3/account?signature=00", headers={"X-MBX-APIKEY": spot.api_key})) == (
        400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")


def test_the_clock_skew_control_moves_the_exchange_clock(sim: ExchangeSimulator, spot: RawSpot) -> None:
    before = httpx.get(f"{sim.rest_url}/api/v3/time").json()["serverTime"]
    answer = httpx.post(f"{sim.rest_url}/_sim/clock", json={"skew_ms": 30_000}).json()
    assert answer["skew_ms"] == 30_000
    after = httpx.get(f"{sim.rest_url}/api/v3/time").json()["serverTime"]
    assert 29_000 < after - before < 40_000
    assert error(spot.call("GET", "/api/v3/account"))[1] == -1021  # our wall-clock timestamp is now 30 s behind
    httpx.post(f"{sim.rest_url}/_sim/clock", json={"skew_ms": 30_000, "hide_from_time": True})
    hidden = httpx.get(f"{sim.rest_url}/api/v3/time").json()["serverTime"]
    assert hidden - before < 10_000
    assert httpx.post(f"{sim.rest_url}/_sim/clock", json={"skew_ms": "x"}).status_code == 400


# -- the order endpoint's checks ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("params", "code", "msg"), [
    ({"side": "BUY", "type": "MARKET", "quantity": "abc"}, -1100, "Illegal characters found in parameter 'quantity'"),
    ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1"}, -1102, "Mandatory parameter 'price'"),
    ({"side": "BUY", "type": "LIMIT", "price": "1", "quantity": "1"}, -1102, "Mandatory parameter 'timeInForce'"),
    ({"side": "BUY", "type": "MARKET"}, -1102, "Param 'quantity' or 'quoteOrderQty' must be sent"),
    ({"side": "BUY", "type": "MARKET", "quantity": "1", "timeInForce": "GTC"}, -1106,
     "Parameter 'timeInForce' sent when not required."),
    ({"side": "BUY", "type": "MARKET", "quantity": "1", "price": "1"}, -1106, "Parameter 'price' sent"),
    ({"side": "BUY", "type": "LIMIT", "timeInForce": "DAY", "quantity": "1", "price": "1"}, -1115,
     "Invalid timeInForce."),
    ({"side": "BUY", "type": "PEGGED", "quantity": "1"}, -1116, "Invalid orderType."),
    ({"side": "HOLD", "type": "MARKET", "quantity": "1"}, -1117, "Invalid side."),
    ({"side": "BUY", "type": "MARKET", "quantity": "0.000000001"}, -1111,
     "Parameter 'quantity' has too much precision."),
    ({"side": "BUY", "type": "MARKET", "quantity": "1", "colour": "red"}, -1104, "Not all sent parameters were read"),
    ({"side": "BUY", "type": "MARKET", "quantity": "1", "newClientOrderId": "has space"}, -1100,
     "Illegal characters found in parameter 'newClientOrderId'"),
    ({"side": "BUY", "type": "TAKE_PROFIT", "quantity": "1", "stopPrice": "1"}, -2010,
     "Take profit orders are not supported for this symbol."),
    ({"symbol": "XYZ", "side": "BUY", "type": "MARKET", "quantity": "1"}, -1121, "Invalid symbol."),
    ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01", "price": "60000.001"}, -1013,
     "Filter failure: PRICE_FILTER"),
    ({"side": "BUY", "type": "MARKET", "quantity": "0.000015"}, -1013, "Filter failure: LOT_SIZE"),
    ({"side": "BUY", "type": "MARKET", "quantity": "5000"}, -1013, "Filter failure: MARKET_LOT_SIZE"),
    ({"side": "BUY", "type": "MARKET", "quantity": "0.00001"}, -1013, "Filter failure: NOTIONAL"),
    ({"side": "SELL", "type": "MARKET", "quantity": "50"}, -2010,
     "Account has insufficient balance for requested action."),
])
def test_bad_orders_get_binance_codes(spot: RawSpot, params: dict[str, Any], code: int, msg: str) -> None:
    status, got_code, got_msg = error(spot.call("POST", "/api/v3/order", **{"symbol": "BTCUSDT", **params}))
    assert (status, got_code) == (400, code) and got_msg.startswith(msg)


def test_matching_engine_refusals(sim: ExchangeSimulator, spot: RawSpot) -> None:
    price = price_of(sim)
    low, high = (price * D("0.8")).quantize(D("0.01")), (price * D("1.2")).quantize(D("0.01"))
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01",
             "price": str(low), "newClientOrderId": "dup-1"}
    spot.ok("POST", "/api/v3/order", **order)
    assert error(spot.call("POST", "/api/v3/order", **order)) == (400, -2010, "Duplicate order sent.")
    spot.ok("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="dup-1")
    spot.ok("POST", "/api/v3/order", **order)  # free again once the first is no longer open
    assert error(spot.call("POST", "/api/v3/order", symbol="BTCUSDT", side="SELL", type="STOP_LOSS",
                           quantity="0.01", stopPrice=str(high))) == (400, -2010, "Order would trigger immediately.")
    assert error(spot.call("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT_MAKER",
                           quantity="0.01", price=str(high))) == (400, -2010, "Order would immediately match and take.")
    assert error(spot.call("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                           quantity="10", price=str(low)))[1:] == (
        -2010, "Account has insufficient balance for requested action.")


def test_ioc_and_fok_limits_that_cannot_fill_at_once_expire(sim: ExchangeSimulator, spot: RawSpot) -> None:
    low = (price_of(sim) * D("0.8")).quantize(D("0.01"))
    for tif in ("IOC", "FOK"):
        body = spot.ok("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce=tif,
                       quantity="0.01", price=str(low))
        assert (body["status"], body["executedQty"], body["fills"]) == ("EXPIRED", "0.00000000", [])
    assert D({b["asset"]: b for b in spot.ok("GET", "/api/v3/account")["balances"]}["USDT"]["locked"]) == 0


def test_a_marketable_limit_fills_at_the_current_price_and_releases_the_rest(
        sim: ExchangeSimulator, spot: RawSpot) -> None:
    high = (price_of(sim) * D("1.2")).quantize(D("0.01"))
    body = spot.ok("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                   quantity="0.01", price=str(high))
    assert body["status"] == "FILLED" and D(body["fills"][0]["price"]) < high
    usdt = {b["asset"]: b for b in spot.ok("GET", "/api/v3/account")["balances"]}["USDT"]
    assert D(usdt["locked"]) == 0 and D(usdt["free"]) == D(100000) - D(body["cummulativeQuoteQty"])


def test_ground_truth_lists_every_order_and_trade(sim: ExchangeSimulator, spot: RawSpot) -> None:
    spot.ok("POST", "/api/v3/order", symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.01",
            newClientOrderId="gt-1")
    truth = ground_truth(sim.rest_url, spot.api_key)
    assert [o["clientOrderId"] for o in truth["orders"]] == ["gt-1"] and len(truth["trades"]) == 1
    assert D(truth["balances"]["ETH"]["free"]) == D("0.00999")
