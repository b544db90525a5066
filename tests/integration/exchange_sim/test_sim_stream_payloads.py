"""Kline payloads over real WebSockets: Binance's format field by field, and agreement with REST."""

from __future__ import annotations

import itertools
import re
from typing import Any

import httpx
from sim_helpers import collect, kline, recv_json, row_of
from websockets.asyncio.client import connect

from tacore.exchange_sim import ExchangeSimulator

DECIMAL = re.compile(r"^\d+\.\d{8}$")


def _check_kline_event(event: dict[str, Any], symbol: str, interval: str) -> None:
    assert list(event) == ["e", "E", "s", "k"]
    assert event["e"] == "kline" and event["s"] == symbol
    assert isinstance(event["E"], int) and not isinstance(event["E"], bool)
    k = event["k"]
    assert list(k) == ["t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"]
    for field in ("t", "T", "f", "L", "n"):
        assert type(k[field]) is int, field
    for field in ("o", "c", "h", "l", "v", "q", "V", "Q"):
        assert isinstance(k[field], str) and DECIMAL.match(k[field]), (field, k[field])
    assert type(k["x"]) is bool
    assert k["s"] == symbol and k["i"] == interval and k["B"] == "0"
    assert k["T"] - k["t"] == {"1m": 60_000, "5m": 300_000}[interval] - 1
    assert k["t"] <= event["E"]
    assert float(k["l"]) <= min(float(k["o"]), float(k["c"]))
    assert float(k["h"]) >= max(float(k["o"]), float(k["c"]))
    assert k["L"] - k["f"] + 1 == k["n"]


async def test_raw_stream_sends_binance_kline_events_with_exact_field_types(sim: ExchangeSimulator) -> None:
    async with connect(f"{sim.ws_url}/ws/btcusdt@kline_1m") as ws:
        messages = await collect(ws, 0.4)
    assert len(messages) >= 3
    for msg in messages:
        _check_kline_event(msg, "BTCUSDT", "1m")
    assert any(m["k"]["x"] for m in messages) and any(not m["k"]["x"] for m in messages)


async def test_combined_stream_wraps_each_event_with_its_stream_name(sim: ExchangeSimulator) -> None:
    url = f"{sim.ws_url}/stream?streams=btcusdt@kline_1m/ethbtc@kline_5m"
    async with connect(url) as ws:
        messages = await collect(ws, 0.4)
    seen = set()
    for msg in messages:
        assert list(msg) == ["stream", "data"]
        symbol, interval = {"btcusdt@kline_1m": ("BTCUSDT", "1m"), "ethbtc@kline_5m": ("ETHBTC", "5m")}[msg["stream"]]
        _check_kline_event(msg["data"], symbol, interval)
        seen.add(msg["stream"])
    assert seen == {"btcusdt@kline_1m", "ethbtc@kline_5m"}


async def test_every_closed_candle_streamed_equals_the_rest_row_for_it(sim: ExchangeSimulator) -> None:
    url = f"{sim.ws_url}/stream?streams=btcusdt@kline_1m/btcusdt@kline_5m"
    async with connect(url) as ws:
        messages = await collect(ws, 1.2)
    finals: dict[str, list[dict[str, Any]]] = {"1m": [], "5m": []}
    for msg in messages:
        k = kline(msg)
        if k["x"]:
            finals[k["i"]].append(k)
    assert len(finals["1m"]) >= 8 and len(finals["5m"]) >= 1
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        for interval, closed in finals.items():
            opens = [k["t"] for k in closed]
            assert opens == sorted(opens) and len(set(opens)) == len(opens)
            reply = await http.get(
                "/api/v3/klines",
                params={"symbol": "BTCUSDT", "interval": interval, "startTime": opens[0], "endTime": opens[-1]},
            )
            assert reply.status_code == 200
            rows = {row[0]: row for row in reply.json()}
            for k in closed:
                assert rows[k["t"]] == row_of(k)


async def test_closed_candles_follow_each_other_without_gaps_and_open_where_the_last_closed(
    sim: ExchangeSimulator,
) -> None:
    async with connect(f"{sim.ws_url}/ws/ethusdt@kline_1m") as ws:
        messages = await collect(ws, 1.0)
    closed = [m["k"] for m in messages if m["k"]["x"]]
    assert len(closed) >= 5
    for before, after in itertools.pairwise(closed):
        assert after["t"] == before["T"] + 1
        assert after["o"] == before["c"]


async def test_open_candle_updates_never_leave_the_range_of_the_candle_that_closes(
    sim: ExchangeSimulator,
) -> None:
    async with connect(f"{sim.ws_url}/ws/solusdt@kline_1m") as ws:
        messages = await collect(ws, 1.0)
    by_open: dict[int, list[dict[str, Any]]] = {}
    for m in messages:
        by_open.setdefault(m["k"]["t"], []).append(m["k"])
    checked = 0
    for updates in by_open.values():
        final = [k for k in updates if k["x"]]
        if not final:
            continue
        for k in updates:
            assert float(final[0]["l"]) <= float(k["l"]) and float(k["h"]) <= float(final[0]["h"])
            assert float(k["v"]) <= float(final[0]["v"]) and k["n"] <= final[0]["n"]
            checked += 1
    assert checked > 0


async def test_unlisted_symbol_stream_is_accepted_but_never_carries_data(make_sim: Any) -> None:
    sim = make_sim(symbols=frozenset({"BTCUSDT"}))
    async with connect(f"{sim.ws_url}/stream?streams=ethusdt@kline_1m/btcusdt@kline_1m") as ws:
        messages = await collect(ws, 0.3)
        assert messages and {m["stream"] for m in messages} == {"btcusdt@kline_1m"}
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
        while True:
            msg = await recv_json(ws)
            if msg.get("id") == 1:
                break
    assert msg == {"result": ["ethusdt@kline_1m", "btcusdt@kline_1m"], "id": 1}


async def test_raw_path_with_several_streams_sends_unwrapped_events_for_each(sim: ExchangeSimulator) -> None:
    async with connect(f"{sim.ws_url}/ws/btcusdt@kline_1m/ethusdt@kline_1m") as ws:
        messages = await collect(ws, 0.3)
    assert {m["s"] for m in messages} == {"BTCUSDT", "ETHUSDT"}
    assert all(m["e"] == "kline" for m in messages)
