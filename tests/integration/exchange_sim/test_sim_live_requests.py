"""Live SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / properties, and Binance's error replies."""

from __future__ import annotations

import json
from typing import Any

from sim_helpers import collect, recv_json, recv_reply
from websockets.asyncio.client import connect

from tacore.exchange_sim import ExchangeSimulator


async def test_subscribe_replies_result_null_before_any_data_of_the_new_streams(sim: ExchangeSimulator) -> None:
    async with connect(f"{sim.ws_url}/ws") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": 1}))
        first = await recv_json(ws)
        assert first == {"result": None, "id": 1}
        data = await recv_json(ws)
        assert data["e"] == "kline" and data["s"] == "BTCUSDT"


async def test_list_subscriptions_reflects_subscribe_and_unsubscribe_in_order(sim: ExchangeSimulator) -> None:
    async with connect(f"{sim.ws_url}/stream?streams=btcusdt@kline_1m") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@kline_5m", "bnbusdt@kline_1h"], "id": 7}))
        assert await recv_reply(ws, 7) == {"result": None, "id": 7}
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 8}))
        reply = await recv_reply(ws, 8)
        assert reply == {"result": ["btcusdt@kline_1m", "ethusdt@kline_5m", "bnbusdt@kline_1h"], "id": 8}
        await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": 9}))
        assert await recv_reply(ws, 9) == {"result": None, "id": 9}
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": "abc10"}))
        assert await recv_reply(ws, "abc10") == {"result": ["ethusdt@kline_5m", "bnbusdt@kline_1h"], "id": "abc10"}
        after = await collect(ws, 0.3)
    assert after and all(m["stream"] != "btcusdt@kline_1m" for m in after)


async def test_unsubscribed_stream_stops_sending(sim: ExchangeSimulator) -> None:
    async with connect(f"{sim.ws_url}/ws/btcusdt@kline_1m") as ws:
        assert (await recv_json(ws))["s"] == "BTCUSDT"
        await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": 2}))
        await recv_reply(ws, 2)
        assert await collect(ws, 0.3) == []


async def _ask(ws: Any, text: str) -> dict[str, Any]:
    await ws.send(text)
    while True:
        msg = await recv_json(ws)
        if "error" in msg or "result" in msg:
            return dict(msg)


async def test_malformed_requests_get_binance_error_objects(make_sim: Any) -> None:
    sim = make_sim(max_frames_per_s=50)  # six requests in a row; the 5/s limit has its own test
    async with connect(f"{sim.ws_url}/ws") as ws:
        bad_json = await _ask(ws, "{not json")
        assert bad_json["error"]["code"] == 3 and bad_json["error"]["msg"].startswith("Invalid JSON")
        unknown = await _ask(ws, json.dumps({"method": "SUBSCRIBEX", "params": [], "id": 3}))
        assert unknown["id"] == 3 and unknown["error"]["code"] == 2
        assert "unknown variant `SUBSCRIBEX`" in unknown["error"]["msg"]
        invalid = await _ask(ws, json.dumps({"method": "SUBSCRIBE", "params": ["BTCUSDT kline"], "id": 4}))
        assert invalid == {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 4}
        bad_id = await _ask(ws, json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": {"x": 1}}))
        assert bad_id["error"] == {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}
        no_method = await _ask(ws, json.dumps({"params": [], "id": 5}))
        assert no_method["error"]["code"] == 2 and "missing field `method`" in no_method["error"]["msg"]
        # the connection survives every error
        assert await _ask(ws, json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 6})) == {"result": [], "id": 6}


async def test_subscribing_past_the_stream_limit_is_refused_and_changes_nothing(make_sim: Any) -> None:
    sim = make_sim(max_streams_per_connection=3)
    async with connect(f"{sim.ws_url}/ws/btcusdt@kline_1m") as ws:
        params = ["ethusdt@kline_1m", "bnbusdt@kline_1m", "solusdt@kline_1m"]
        reply = await _ask(ws, json.dumps({"method": "SUBSCRIBE", "params": params, "id": 1}))
        assert reply == {"error": {"code": 2, "msg": "Invalid request: too many streams"}, "id": 1}
        listed = await _ask(ws, json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
        assert listed == {"result": ["btcusdt@kline_1m"], "id": 2}
        ok = await _ask(ws, json.dumps({"method": "SUBSCRIBE", "params": params[:2], "id": 3}))
        assert ok == {"result": None, "id": 3}


async def test_combined_property_switches_payload_wrapping(sim: ExchangeSimulator) -> None:
    async with connect(f"{sim.ws_url}/ws/btcusdt@kline_1m") as ws:
        assert await _ask(ws, json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 1})) == {
            "result": False,
            "id": 1,
        }
        reply = await _ask(ws, json.dumps({"method": "SET_PROPERTY", "params": ["combined", True], "id": 2}))
        assert reply == {"result": None, "id": 2}
        wrapped = await recv_json(ws)
        assert wrapped["stream"] == "btcusdt@kline_1m" and wrapped["data"]["e"] == "kline"
        unknown = await _ask(ws, json.dumps({"method": "GET_PROPERTY", "params": ["nope"], "id": 3}))
        assert unknown["error"] == {"code": 0, "msg": "Unknown property"}
