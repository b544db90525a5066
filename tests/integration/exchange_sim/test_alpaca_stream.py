"""The simulator's Alpaca bars stream over a real WebSocket: welcome, auth, subscriptions, error codes,
minute bars right after each minute closes inside a session, silence outside."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sim_helpers import collect, recv_json
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tacore.exchange_sim import ExchangeSimulator

KEY, SECRET = "SIMKEYID", "SIMSECRETKEY"
AUTH = {"action": "auth", "key": KEY, "secret": SECRET}


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def t_ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


IN_SESSION = ms("2024-07-02T15:00:00")  # Tuesday 11:00 New York
SATURDAY = ms("2024-07-06T15:00:00")


def loaded(sim: ExchangeSimulator) -> ExchangeSimulator:
    """The simulator with its NYSE calendar loaded (a second's work it otherwise does on first use)."""
    assert sim.alpaca is not None
    sim.alpaca.market_now()
    return sim


@pytest.fixture
def fast(make_sim: Callable[..., ExchangeSimulator]) -> ExchangeSimulator:
    """600x: a minute closes every 100 ms, inside a session."""
    return loaded(make_sim(clock_speed=600.0, start_time_ms=IN_SESSION))


async def send(ws: ClientConnection, msg: dict[str, Any]) -> Any:
    await ws.send(json.dumps(msg))
    return await recv_json(ws, timeout=5)


async def authed(sim: ExchangeSimulator, feed: str = "iex") -> ClientConnection:
    ws = await connect(f"{sim.alpaca_stream_url}/v2/{feed}")
    assert await recv_json(ws, timeout=5) == [{"T": "success", "msg": "connected"}]
    assert await send(ws, AUTH) == [{"T": "success", "msg": "authenticated"}]
    return ws


async def test_session_minute_bars_arrive_as_each_minute_closes_and_match_rest(fast: ExchangeSimulator) -> None:
    ws = await authed(fast)
    sub = await send(ws, {"action": "subscribe", "bars": ["AAPL", "MSFT", "NOPE"], "dailyBars": ["AAPL"]})
    assert sub == [{"T": "subscription", "trades": [], "quotes": [], "bars": ["AAPL", "MSFT", "NOPE"],
                    "updatedBars": [], "dailyBars": ["AAPL"], "statuses": [], "lulds": [], "corrections": [],
                    "cancelErrors": []}]
    frames = await collect(ws, 1.5)
    await ws.close()
    points = [p for frame in frames for p in frame]
    bars = [p for p in points if p["T"] == "b"]
    assert {p["S"] for p in bars} == {"AAPL", "MSFT"}  # an unlisted ticker carries no data
    aapl = [p for p in bars if p["S"] == "AAPL"]
    assert len(aapl) >= 8
    times = [t_ms(p["t"]) for p in aapl]
    assert times == list(range(times[0], times[0] + 60_000 * len(times), 60_000))  # every minute, in order
    assert list(aapl[0]) == ["T", "S", "o", "h", "l", "c", "v", "t", "n", "vw"]
    rest = httpx.get(fast.alpaca_rest_url + "/v2/stocks/AAPL/bars", params={
        "timeframe": "1Min", "feed": "iex", "start": aapl[0]["t"], "end": aapl[-1]["t"]},
        headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}).json()["bars"]
    assert [{k: v for k, v in p.items() if k not in ("T", "S")} for p in aapl] == rest
    daily = [p for p in points if p["T"] == "d"]
    assert [d["t"] for d in daily] == ["2024-07-02T04:00:00Z"] * len(daily)
    assert daily[-1]["c"] == aapl[-1]["c"] and daily[-1]["v"] > sum(p["v"] for p in aapl)  # the day so far


async def test_no_bars_outside_sessions_and_the_test_stream_always_flows(
        make_sim: Callable[..., ExchangeSimulator]) -> None:
    sim = loaded(make_sim(clock_speed=600.0, start_time_ms=SATURDAY))
    ws = await authed(sim)
    await send(ws, {"action": "subscribe", "bars": ["*"]})
    assert await collect(ws, 0.6) == []
    await ws.close()
    test = await authed(sim, "test")
    await send(test, {"action": "subscribe", "bars": ["FAKEPACA"]})
    frames = await collect(test, 0.6)
    await test.close()
    assert frames and all(p["S"] == "FAKEPACA" and p["T"] == "b" for f in frames for p in f)


async def test_wildcard_and_unsubscribe(fast: ExchangeSimulator) -> None:
    ws = await authed(fast, "sip")
    await send(ws, {"action": "subscribe", "bars": ["*"]})
    frames = await collect(ws, 0.5)
    assert len({p["S"] for f in frames for p in f}) == 30  # the whole US universe
    left = await send(ws, {"action": "unsubscribe", "bars": ["*"]})
    assert left[0]["bars"] == []
    await asyncio.sleep(0.15)
    while True:  # drain what was buffered before the unsubscribe
        try:
            await asyncio.wait_for(ws.recv(), 0.05)
        except TimeoutError:
            break
    assert await collect(ws, 0.4) == []
    await ws.close()


async def test_every_error_code(make_sim: Callable[..., ExchangeSimulator]) -> None:
    sim = loaded(make_sim(clock_speed=600.0, start_time_ms=IN_SESSION, alpaca_sip=False, alpaca_symbol_limit=3))
    async with connect(f"{sim.alpaca_stream_url}/v2/iex") as ws:
        await recv_json(ws)
        assert await send(ws, {"action": "subscribe", "bars": ["AAPL"]}) == [
            {"T": "error", "code": 401, "msg": "not authenticated"}]
        assert await send(ws, {"action": "auth", "key": KEY, "secret": "wrong"}) == [
            {"T": "error", "code": 402, "msg": "auth failed"}]
        await ws.send("{not json")
        assert await recv_json(ws) == [{"T": "error", "code": 400, "msg": "invalid syntax"}]
        await ws.send(b"\x81\xa6action")  # msgpack is not offered
        assert await recv_json(ws) == [{"T": "error", "code": 400, "msg": "invalid syntax"}]
        assert await send(ws, {"action": "dance"}) == [{"T": "error", "code": 400, "msg": "invalid syntax"}]
        assert await send(ws, AUTH) == [{"T": "success", "msg": "authenticated"}]
        assert await send(ws, AUTH) == [{"T": "error", "code": 403, "msg": "already authenticated"}]
        assert await send(ws, {"action": "subscribe", "bars": "AAPL"}) == [
            {"T": "error", "code": 400, "msg": "invalid syntax"}]
        ok = await send(ws, {"action": "subscribe", "trades": ["AAPL", "MSFT"], "quotes": ["TSLA"]})
        assert ok[0]["trades"] == ["AAPL", "MSFT"] and ok[0]["corrections"] == ["AAPL", "MSFT"]
        assert await send(ws, {"action": "subscribe", "quotes": ["NVDA"]}) == [
            {"T": "error", "code": 405, "msg": "symbol limit exceeded"}]
        # a second authenticated connection of the same key pair is refused and closed
        second = await connect(f"{sim.alpaca_stream_url}/v2/iex")
        await recv_json(second)
        assert await send(second, AUTH) == [{"T": "error", "code": 406, "msg": "connection limit exceeded"}]
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(second.recv(), 2)
    # the SIP endpoint needs a plan with SIP
    async with connect(f"{sim.alpaca_stream_url}/v2/sip") as sip:
        await recv_json(sip)
        assert await send(sip, AUTH) == [{"T": "error", "code": 409, "msg": "insufficient subscription"}]


async def test_unauthenticated_connections_time_out(make_sim: Callable[..., ExchangeSimulator]) -> None:
    sim = make_sim(alpaca_auth_timeout_s=0.3)
    async with connect(f"{sim.alpaca_stream_url}/v2/iex") as ws:
        await recv_json(ws)
        assert await recv_json(ws, timeout=3) == [{"T": "error", "code": 404, "msg": "auth timeout"}]
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 3)


async def test_header_auth_and_unknown_paths(fast: ExchangeSimulator) -> None:
    headers = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
    async with connect(f"{fast.alpaca_stream_url}/v2/iex", additional_headers=headers) as ws:
        assert await recv_json(ws) == [{"T": "success", "msg": "connected"}]
        assert await recv_json(ws) == [{"T": "success", "msg": "authenticated"}]
    with pytest.raises(InvalidStatus) as err:
        await connect(f"{fast.alpaca_stream_url}/v2/crypto")
    assert err.value.response.status_code == 404


async def test_control_api_drops_stream_connections(fast: ExchangeSimulator) -> None:
    ws = await authed(fast)
    stats = httpx.get(fast.rest_url + "/_sim/stats").json()["alpaca"]
    assert stats["live_connections"] == 1 and stats["connections"][0]["authenticated"] is True
    dropped = httpx.post(fast.rest_url + "/_sim/alpaca/disconnect", json={"mode": "abort"}).json()
    assert dropped["mode"] == "abort" and len(dropped["connections"]) == 1
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 3)


async def test_a_late_trade_sends_updated_bars_and_changes_every_aggregate(fast: ExchangeSimulator) -> None:
    ws = await authed(fast, "sip")
    await send(ws, {"action": "subscribe", "bars": ["AAPL"], "updatedBars": ["AAPL"]})
    frames = await collect(ws, 0.5)
    bar = next(p for f in frames for p in f if p["T"] == "b")
    minute = t_ms(bar["t"])
    headers = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
    five = minute - minute % 300_000
    before = httpx.get(fast.alpaca_rest_url + "/v2/stocks/AAPL/bars", headers=headers, params={
        "timeframe": "5Min", "start": datetime.fromtimestamp(five / 1000, UTC).isoformat()}).json()["bars"][0]
    reply = httpx.post(fast.rest_url + "/_sim/alpaca/late_trade",
                       json={"symbol": "AAPL", "minute_ms": minute, "shares": 5000, "price": bar["h"] + 1}).json()
    assert reply["updates_sent"] == 1 and reply["bar"]["v"] == bar["v"] + 5000 and reply["bar"]["h"] == bar["h"] + 1
    updated = [p for f in await collect(ws, 0.5) for p in f if p["T"] == "u"]
    await ws.close()
    assert len(updated) == 1 and updated[0]["t"] == bar["t"] and updated[0]["v"] == bar["v"] + 5000
    assert updated[0]["n"] == bar["n"] + 1 and updated[0]["h"] == bar["h"] + 1
    after = httpx.get(fast.alpaca_rest_url + "/v2/stocks/AAPL/bars", headers=headers, params={
        "timeframe": "5Min", "start": datetime.fromtimestamp(five / 1000, UTC).isoformat()}).json()["bars"][0]
    assert after["t"] == before["t"] and after["v"] >= before["v"] + 5000  # the bucket may also have grown
    bad = httpx.post(fast.rest_url + "/_sim/alpaca/late_trade", json={"symbol": "AAPL", "minute_ms": SATURDAY})
    assert bad.status_code == 400
