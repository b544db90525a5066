"""execute.order and the order/portfolio methods through a real broker to the order process, priced by
DATA_READY candles; retries across restarts; resting orders filled by candles while nobody calls."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from decimal import Decimal

from order_support import CandleFeed, call, data, wait_for_price

from tests.support.processes import TACoreProcess, wait_until

D = Decimal
Start = Callable[..., tuple[TACoreProcess, CandleFeed]]


def test_the_design_document_payload_fills_and_the_order_is_there_to_get_list_and_value(
        order_service: Start) -> None:
    tacore, feed = order_service()
    feed.candle("BTCUSDT", 100.0, 101.0, 99.0, 100.5)
    wait_for_price(tacore, "BTCUSDT")
    order = data(call(tacore, "execute.order", {"symbol": "BTCUSDT", "action": "buy", "quantity": 2,
                                                "order_type": "market"}, request_id="design-1"))
    assert (order["status"], order["filled_qty"], order["filled_avg_price"]) == ("filled", "2", "100.5")
    assert (order["client_order_id"], order["fees"], order["fee_asset"]) == ("design-1", "0.0402", "USDT")
    assert data(call(tacore, "order.get", {"order_id": order["id"], "include_fills": True}))["fills"][0]["qty"] == "2"
    assert data(call(tacore, "order.get", {"client_order_id": "design-1"}))["id"] == order["id"]
    listed = data(call(tacore, "order.list", {"status": "closed", "account": "paper"}))
    assert [o["id"] for o in listed["orders"]] == [order["id"]]
    (fill,) = data(call(tacore, "fill.list", {"account": "paper"}))["fills"]
    assert (fill["order_id"], fill["account"], fill["order_type"], fill["qty"]) == (order["id"], "paper", "market", "2")
    newest = data(call(tacore, "fill.list", {"limit": 5}))["fills"]  # every account's: the probe orders' too
    assert newest[0]["order_id"] == order["id"] and {f["account"] for f in newest} == {"paper", "probe"}
    feed.candle("BTCUSDT", 100.5, 111.0, 100.0, 110.5, open_ms=feed.next_minute())
    wait_until(lambda: data(call(tacore, "portfolio.positions", {"account": "paper"}))["positions"][0][
        "current_price"] == "110.5", 10, "the position marked to the newest close")
    (position,) = data(call(tacore, "portfolio.positions", {"account": "paper"}))["positions"]
    assert (position["qty"], position["avg_entry_price"], position["unrealized_pl"]) == ("2", "100.5", "20")
    balances = data(call(tacore, "account.balances", {"account": "paper"}))
    assert balances["balances"][0]["total"] == str(D("1000000") - D("201") - D("0.0402"))
    assert balances["equity"]["paper"]["USDT"] == str(D("1000000") - D("0.0402") + D("20"))


def test_bad_orders_are_invalid_params_with_fields_and_refused_ones_are_rejected_orders(order_service: Start) -> None:
    tacore, feed = order_service()
    feed.candle("BTCUSDT", 100.0, 101.0, 99.0, 100.0)
    wait_for_price(tacore, "BTCUSDT")
    bad = call(tacore, "execute.order", {"symbol": "BTCUSDT", "action": "hold", "quantity": -1,
                                         "order_type": "limit"})
    assert bad["error"]["code"] == "INVALID_PARAMS"
    fields = {d["field"] for d in bad["error"]["details"]}
    assert {"action", "quantity"} <= fields
    poor = data(call(tacore, "execute.order", {"symbol": "BTCUSDT", "action": "buy", "quantity": "100000"}))
    assert poor["status"] == "rejected" and poor["reason"].startswith("insufficient funds")
    unpriced = data(call(tacore, "execute.order", {"symbol": "ETHUSDT", "action": "buy", "quantity": "1"}))
    assert unpriced["status"] == "rejected" and unpriced["reason"] == "no price for ETHUSDT"
    assert call(tacore, "order.get", {"order_id": "nope"})["error"]["code"] == "INVALID_PARAMS"


def test_a_retry_answers_the_same_order_by_request_id_or_client_order_id_also_after_a_restart_and_the_ttl(
        order_service: Start) -> None:
    tacore, feed = order_service(IDEMPOTENCY_TTL_S="2", DEDUPE_TTL_S="1")
    feed.candle("BTCUSDT", 100.0, 101.0, 99.0, 100.0)
    wait_for_price(tacore, "BTCUSDT")
    params = {"symbol": "BTCUSDT", "action": "buy", "quantity": "1", "client_order_id": "keep-1"}
    first = data(call(tacore, "execute.order", params, request_id="retry-1"))
    assert data(call(tacore, "execute.order", params, request_id="retry-1"))["id"] == first["id"]  # broker dedupe
    assert data(call(tacore, "execute.order", params, request_id="retry-2"))["id"] == first["id"]  # ledger
    conflict = call(tacore, "execute.order", {**params, "quantity": "2"}, request_id="retry-3")
    assert conflict["error"]["code"] == "CONFLICT" and conflict["error"]["details"]["order_id"] == first["id"]
    tacore.stop()
    tacore.start()
    tacore.wait_healthy(workers=2, timeout=60)
    wait_for_price(tacore, "BTCUSDT")
    assert data(call(tacore, "execute.order", params, request_id="retry-1"))["id"] == first["id"]  # its record
    time.sleep(2.5)  # the idempotency record has expired: the ledger answers, days later
    again = data(call(tacore, "execute.order", params, request_id="retry-1"))
    assert again["id"] == first["id"] and again["status"] == "filled"
    orders = data(call(tacore, "order.list", {"status": "all", "account": "paper"}))["orders"]
    assert [o["id"] for o in orders] == [first["id"]]


def test_resting_orders_fill_stop_and_expire_on_candles_while_nobody_calls(order_service: Start) -> None:
    tacore, feed = order_service()
    feed.candle("ETHUSDT", 50.0, 51.0, 49.0, 50.0)
    wait_for_price(tacore, "ETHUSDT")
    data(call(tacore, "execute.order", {"symbol": "ETHUSDT", "action": "buy", "quantity": "10"}))
    limit = data(call(tacore, "execute.order", {"symbol": "ETHUSDT", "action": "buy", "quantity": "4",
                                                "order_type": "limit", "price": "45", "time_in_force": "gtc"}))
    stop = data(call(tacore, "execute.order", {"symbol": "ETHUSDT", "action": "sell", "quantity": "10",
                                               "order_type": "stop", "stop_price": "42", "time_in_force": "gtc"}))
    assert limit["status"] == stop["status"] == "new"
    feed.candle("ETHUSDT", 48.0, 48.5, 44.0, 44.5, open_ms=feed.next_minute())  # through the limit only
    wait_until(lambda: data(call(tacore, "order.get", {"order_id": limit["id"]}))["status"] == "filled", 10,
               "the limit filled by the candle")
    assert data(call(tacore, "order.get", {"order_id": limit["id"]}))["filled_avg_price"] == "45"
    feed.candle("ETHUSDT", 41.0, 41.5, 40.0, 40.5, open_ms=feed.next_minute())  # gaps below the stop
    wait_until(lambda: data(call(tacore, "order.get", {"order_id": stop["id"]}))["status"] == "filled", 10,
               "the stop filled at the open")
    assert data(call(tacore, "order.get", {"order_id": stop["id"]}))["filled_avg_price"] == "41"
    (position,) = [p for p in data(call(tacore, "portfolio.positions", {"account": "paper"}))["positions"]]
    assert position["qty"] == "4"


def test_a_canceled_order_releases_its_reservation(order_service: Start) -> None:
    tacore, feed = order_service()
    feed.candle("BTCUSDT", 100.0, 101.0, 99.0, 100.0)
    wait_for_price(tacore, "BTCUSDT")
    rid = uuid.uuid4().hex
    resting = data(call(tacore, "execute.order", {"symbol": "BTCUSDT", "action": "buy", "quantity": "10",
                                                  "order_type": "limit", "price": "90"}, request_id=rid))
    usdt = data(call(tacore, "account.balances", {"account": "paper"}))["balances"][0]
    assert D(usdt["reserved"]) == D("900.18")  # 10 x 90 and the larger fee, 2 bps
    canceled = data(call(tacore, "order.cancel", {"order_id": resting["id"]}))
    assert canceled["status"] == "canceled" and canceled["canceled_at"] is not None
    assert data(call(tacore, "account.balances", {"account": "paper"}))["balances"][0]["reserved"] == "0"
