"""Fault injection through /_sim/: forced disconnects, stalled streams, half-open sockets."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sim_helpers import PingCountingConnection, collect, recv_json
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tacore.exchange_sim import ExchangeSimulator


def _control(sim: ExchangeSimulator, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = httpx.post(f"{sim.rest_url}/_sim/{path}", json=body)
    reply.raise_for_status()
    data: dict[str, Any] = reply.json()
    return data


async def _drain_until_closed(ws: ClientConnection, timeout: float = 3.0) -> tuple[ConnectionClosed, list[Any]]:
    """Messages received until the connection ends, and how it ended."""
    seen: list[Any] = []
    with pytest.raises(ConnectionClosed) as info:
        async with asyncio.timeout(timeout):
            while True:
                seen.append(await ws.recv())
    return info.value, seen


async def _control_async(sim: ExchangeSimulator, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        reply = await http.post(f"{sim.rest_url}/_sim/{path}", json=body)
    reply.raise_for_status()
    data: dict[str, Any] = reply.json()
    return data


async def test_disconnect_close_ends_every_connection_with_a_clean_1000(sim: ExchangeSimulator) -> None:
    async with (
        connect(f"{sim.ws_url}/ws/btcusdt@kline_1m") as a,
        connect(f"{sim.ws_url}/stream?streams=ethusdt@kline_1m") as b,
    ):
        await recv_json(a)
        await recv_json(b)
        reply = await _control_async(sim, "disconnect", {"mode": "close"})
        assert reply["mode"] == "close" and len(reply["connections"]) == 2
        for ws in (a, b):
            closed, _ = await _drain_until_closed(ws)
            assert closed.rcvd is not None and closed.rcvd.code == 1000


async def test_disconnect_abort_drops_the_tcp_connection_without_a_close_frame(sim: ExchangeSimulator) -> None:
    async with connect(f"{sim.ws_url}/ws/btcusdt@kline_1m") as ws:
        await recv_json(ws)
        await _control_async(sim, "disconnect", {"mode": "abort"})
        closed, _ = await _drain_until_closed(ws)
    assert closed.rcvd is None
    assert sim.stats()["closes_by_code"] == {"1006": 1}


async def test_disconnect_shutdown_sends_server_shutdown_event_then_closes_1001(sim: ExchangeSimulator) -> None:
    async with connect(f"{sim.ws_url}/stream?streams=btcusdt@kline_1m") as ws:
        await recv_json(ws)
        await _control_async(sim, "disconnect", {"mode": "shutdown", "grace_s": 0.2})
        closed, seen = await _drain_until_closed(ws)
    events = [m for m in seen if '"serverShutdown"' in m]
    assert len(events) == 1
    assert events[0].startswith('{"e":"serverShutdown","E":')
    assert seen.index(events[0]) < len(seen) - 1  # data keeps flowing during the grace period
    assert closed.rcvd is not None and closed.rcvd.code == 1001


async def test_disconnect_by_connection_id_leaves_the_other_connections_alone(sim: ExchangeSimulator) -> None:
    async with (
        connect(f"{sim.ws_url}/ws/btcusdt@kline_1m") as a,
        connect(f"{sim.ws_url}/ws/ethusdt@kline_1m") as b,
    ):
        await recv_json(a)
        await recv_json(b)
        ids = {c["streams"][0]: c["id"] for c in sim.stats()["connections"]}
        await _control_async(sim, "disconnect", {"mode": "close", "connection_id": ids["btcusdt@kline_1m"]})
        closed, _ = await _drain_until_closed(a)
        assert closed.rcvd is not None and closed.rcvd.code == 1000
        assert (await recv_json(b))["s"] == "ETHUSDT"


async def test_paused_stream_goes_silent_while_others_and_pings_continue(make_sim: Any) -> None:
    sim = make_sim(ping_interval_s=0.1, max_frames_per_s=50)
    url = f"{sim.ws_url}/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m"
    async with connect(url, create_connection=PingCountingConnection, ping_interval=None) as ws:
        assert isinstance(ws, PingCountingConnection)
        await collect(ws, 0.2)
        await _control_async(sim, "pause", {"seconds": 0.7, "streams": ["btcusdt@kline_1m"]})
        await collect(ws, 0.05)  # what was already in flight
        pings_before = ws.pings_received
        during = await collect(ws, 0.5)
        assert during and {m["stream"] for m in during} == {"ethusdt@kline_1m"}
        assert ws.pings_received >= pings_before + 3
        await asyncio.sleep(0.2)
        after = await collect(ws, 0.4)
    assert "btcusdt@kline_1m" in {m["stream"] for m in after}


async def test_pause_all_stalls_every_stream_but_keeps_the_connection(make_sim: Any) -> None:
    sim = make_sim(ping_interval_s=0.1, max_frames_per_s=50)
    async with connect(f"{sim.ws_url}/ws/btcusdt@kline_1m", create_connection=PingCountingConnection) as ws:
        assert isinstance(ws, PingCountingConnection)
        await recv_json(ws)
        await _control_async(sim, "pause", {"seconds": 0.5})
        await collect(ws, 0.05)  # what was already in flight
        assert await collect(ws, 0.35) == []
        assert ws.pings_received >= 2
        assert (await recv_json(ws, timeout=2.0))["s"] == "BTCUSDT"


async def test_half_open_connection_is_totally_silent_then_reset(make_sim: Any) -> None:
    sim = make_sim(ping_interval_s=0.1)
    async with connect(f"{sim.ws_url}/ws/btcusdt@kline_1m", ping_interval=None, close_timeout=0.1) as ws:
        await recv_json(ws)
        started = time.monotonic()
        await _control_async(sim, "half_open", {"seconds": 1.2})
        await collect(ws, 0.05)  # what was already in flight
        pong = await ws.ping()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pong), 0.5)
        assert sim.stats()["connections"][0]["half_open"] is True
        closed, seen = await _drain_until_closed(ws, timeout=3.0)
    assert seen == []
    assert closed.rcvd is None  # reset, never a close frame
    assert time.monotonic() - started >= 1.1


async def test_a_silent_connection_does_not_block_new_ones(make_sim: Any) -> None:
    sim = make_sim()
    async with connect(f"{sim.ws_url}/ws/btcusdt@kline_1m", close_timeout=0.1) as stuck:
        await recv_json(stuck)
        await _control_async(sim, "half_open", {"seconds": 5})
        async with connect(f"{sim.ws_url}/ws/btcusdt@kline_1m") as fresh:
            assert (await recv_json(fresh))["s"] == "BTCUSDT"
        stuck.transport.abort()


async def test_connections_ending_any_way_leave_no_connection_or_stream_behind(sim: ExchangeSimulator) -> None:
    for i in range(12):
        ws = await connect(f"{sim.ws_url}/stream?streams=btcusdt@kline_1m/sym{i:02d}usdt@kline_5m")
        await recv_json(ws)
        if i % 3 == 0:
            await ws.close()
        elif i % 3 == 1:
            ws.transport.abort()
        else:
            mine = [c["id"] for c in sim.stats()["connections"] if f"sym{i:02d}usdt@kline_5m" in c["streams"]]
            await _control_async(sim, "disconnect", {"mode": "abort", "connection_id": mine[0]})
    deadline = time.monotonic() + 5
    while sim.stats()["live_connections"] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    stats = sim.stats()
    assert stats["live_connections"] == 0 and stats["active_streams"] == 0
    assert sum(stats["closes_by_code"].values()) == 12
