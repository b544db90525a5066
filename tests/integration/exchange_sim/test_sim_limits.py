"""Binance's connection limits, enforced: frame rate, connection attempts, pings, lifetime."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sim_helpers import PingCountingConnection, recv_json
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tacore.exchange_sim import ExchangeSimulator


async def _wait_closed(ws: ClientConnection, timeout: float = 3.0) -> ConnectionClosed:
    with pytest.raises(ConnectionClosed) as info:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    return info.value


def _stats(sim: ExchangeSimulator) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{sim.rest_url}/_sim/stats").json()
    return data


async def _poll(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_sixth_incoming_message_within_a_second_closes_with_1008(sim: ExchangeSimulator) -> None:
    async with connect(f"{sim.ws_url}/ws") as ws:
        for i in range(6):
            await ws.send(f'{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}')
        closed = await _wait_closed(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1008
    await _poll(lambda: _stats(sim)["closes_by_code"].get("1008") == 1)


async def test_evenly_paced_ten_messages_a_second_are_closed_with_1008(sim: ExchangeSimulator) -> None:
    async with connect(f"{sim.ws_url}/ws") as ws:
        with pytest.raises(ConnectionClosed) as info:
            for i in range(40):  # 4 s at most; the limit trips after about one
                await ws.send(f'{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}')
                await asyncio.sleep(0.1)
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008


async def test_client_pings_count_toward_the_message_rate_limit(sim: ExchangeSimulator) -> None:
    async with connect(f"{sim.ws_url}/ws", ping_interval=None) as ws:
        for _ in range(6):
            await ws.ping()
        closed = await _wait_closed(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1008


async def test_five_messages_a_second_are_within_the_limit(sim: ExchangeSimulator) -> None:
    async with connect(f"{sim.ws_url}/ws") as ws:
        for i in range(10):
            await ws.send(f'{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}')
            assert await recv_json(ws) == {"result": [], "id": i}
            await asyncio.sleep(0.21)


async def test_connection_attempts_past_the_limit_are_refused_with_http_429(make_sim: Any) -> None:
    sim = make_sim(max_connection_attempts=3)
    for _ in range(3):
        async with connect(f"{sim.ws_url}/ws"):
            pass
    with pytest.raises(InvalidStatus) as info:
        async with connect(f"{sim.ws_url}/ws"):
            pass
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "300"
    stats = _stats(sim)
    assert stats["handshakes_refused"] == 1 and stats["connection_attempts"] == 4
    httpx.post(f"{sim.rest_url}/_sim/reset_limits", json={}).raise_for_status()
    async with connect(f"{sim.ws_url}/ws"):
        pass


async def test_server_pings_on_its_interval_and_keeps_a_ponging_client(make_sim: Any) -> None:
    sim = make_sim(ping_interval_s=0.1, pong_timeout_s=0.3, max_frames_per_s=50)
    async with connect(f"{sim.ws_url}/ws", create_connection=PingCountingConnection, ping_interval=None) as ws:
        await asyncio.sleep(1.0)
        assert isinstance(ws, PingCountingConnection)
        assert 6 <= ws.pings_received <= 12
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
        assert await recv_json(ws) == {"result": [], "id": 1}


async def test_client_that_never_pongs_is_disconnected_after_the_pong_timeout(make_sim: Any) -> None:
    sim = make_sim(ping_interval_s=0.1, pong_timeout_s=0.4)
    async with connect(f"{sim.ws_url}/ws", ping_interval=None, close_timeout=0.1) as ws:
        ws.transport.pause_reading()  # pings are never read, so never answered
        await _poll(lambda: _stats(sim)["closes_by_code"].get("1011") == 1, timeout=6)
        assert _stats(sim)["live_connections"] == 0


async def test_connection_is_cut_at_its_maximum_lifetime(make_sim: Any) -> None:
    sim = make_sim(max_connection_age_s=0.3)
    async with connect(f"{sim.ws_url}/ws/btcusdt@kline_1m") as ws:
        started = time.monotonic()
        closed = await _wait_closed(ws)
    assert 0.25 <= time.monotonic() - started < 2.0
    assert closed.rcvd is not None and closed.rcvd.code == 1000


async def test_unknown_path_and_malformed_stream_in_url_are_refused(sim: ExchangeSimulator) -> None:
    with pytest.raises(InvalidStatus) as missing:
        async with connect(f"{sim.ws_url}/nope"):
            pass
    assert missing.value.response.status_code == 404
    with pytest.raises(InvalidStatus) as malformed:
        async with connect(f"{sim.ws_url}/ws/BTCUSDT@kline_1m"):
            pass
    assert malformed.value.response.status_code == 400


async def test_a_client_that_stops_reading_loses_updates_then_is_dropped(make_sim: Any) -> None:
    sim = make_sim(update_interval_ms=1.0, write_buffer_limit=20_000)
    streams = "/".join(f"sym{i:02d}usdt@kline_1m" for i in range(50))
    async with connect(f"{sim.ws_url}/stream?streams={streams}", close_timeout=0.1) as ws:
        ws.transport.pause_reading()
        await _poll(lambda: _stats(sim)["slow_consumers_dropped"] == 1, timeout=10)
        stats = _stats(sim)
    assert stats["updates_skipped"] > 0
    assert stats["closes_by_code"] == {"1006": 1}
