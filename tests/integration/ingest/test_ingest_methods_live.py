"""The data agent through the broker: subscribe/unsubscribe, reply shapes, bad input, events, market
data, the price cache in Redis, and the 100 symbols x 7 intervals cold start on at most 2 connections."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import redis
from ingest_harness import Agent, sim_get, wait_complete

from clients import RemoteError
from tacore.events import EventSubscriber
from tacore.exchange_sim.server import ExchangeSimulator
from tacore.intervals import INTERVALS
from tests.support.processes import wait_until

REDIS_URL = "redis://127.0.0.1:6379/0"


def sim_streams(sim: ExchangeSimulator) -> set[str]:
    stats = sim_get(sim, "/_sim/stats")
    return {name for conn in stats["connections"] for name in conn.get("streams", [])}


def test_streams_are_added_and_removed_through_the_broker(
        sim: ExchangeSimulator, agent_factory: Callable[..., Agent]) -> None:
    agent = agent_factory(sim)
    added = agent.call("kline.add_stream", {"symbol": "btcusdt", "interval": "1m"})
    assert added["status"] == "ok" and added["flowing"] is True and added["stream"] == "btcusdt@kline_1m"
    assert "btcusdt@kline_1m" in sim_streams(sim)
    assert agent.call("kline.symbols") == {"symbols": ["BTCUSDT"], "count": 1, "streams": {"BTCUSDT": ["1m"]},
                                           "stream_count": 1, "markets": {"CRYPTO": ["BTCUSDT"]}}
    wait_until(lambda: agent.history("BTCUSDT", "1m"), 5, "stored candles")

    reply = agent.call("kline.add_symbols", {"symbols": ["ETHUSDT", "BTCUSDT"]})
    assert reply["status"] == "ok"
    assert [r["symbol"] for r in reply["results"]] == ["ETHUSDT", "BTCUSDT"]
    assert reply["results"][1]["already_subscribed"] == ["1m"] and len(reply["results"][1]["added"]) == 6
    assert reply["current_status"]["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert reply["current_status"]["connection_count"] == 1
    assert reply["summary"] == {"total": 2, "succeeded": 2, "pending": 0, "streams_added": 13, "stream_count": 14}
    agent.wait_flowing(14)

    conns = agent.call("kline.connections")
    assert conns["count"] == conns["connection_count"] == 1
    conn = conns["connections"][0]
    assert conn["stream_count"] == 14 and conn["messages_received"] > 0
    assert conn["connected_since"] is not None and conn["last_message"] >= conn["connected_since"]

    removed = agent.call("kline.remove_stream", {"symbol": "ETHUSDT", "interval": "4h"})
    assert removed["status"] == "ok" and removed["removed"] is True
    wait_until(lambda: "ethusdt@kline_4h" not in sim_streams(sim), 5, "the exchange to drop the stream")
    assert agent.call("kline.symbols")["streams"]["ETHUSDT"] == ["1m", "5m", "15m", "30m", "1h", "1d"]
    status = agent.status()
    assert status["status"] == "ok" and status["connection_count"] == 1
    assert status["symbols"] == ["BTCUSDT", "ETHUSDT"] and status["storage_state"] == "up"
    for key in ("buffered_rows", "dropped_rows", "rows_written", "messages_received", "cache_hits",
                "cache_misses", "backfilled_candles", "reconnects"):
        assert isinstance(status[key], int), key
    assert status["rows_written"] > 0 and status["dropped_rows"] == 0


def test_every_bad_input_is_invalid_params_and_nothing_is_half_added(
        sim: ExchangeSimulator, agent_factory: Callable[..., Agent]) -> None:
    agent = agent_factory(sim, ["BTCUSDT", "ETHUSDT"], DATA_AGENT_MAX_SYMBOL="3")
    bad: list[tuple[str, object]] = [
        ("kline.add_stream", {"symbol": "BTC-USDT", "interval": "1m"}),
        ("kline.add_stream", {"symbol": "BTCUSDT", "interval": "3m"}),
        ("kline.add_stream", {"symbol": "NOTLISTED", "interval": "1m"}),  # the exchange does not list it
        ("kline.add_stream", {"symbol": "BTCUSDT"}),
        ("kline.add_stream", {"symbol": "BTCUSDT", "interval": "1m", "x": 1}),
        ("kline.remove_stream", {"symbol": "", "interval": "1m"}),
        ("kline.add_symbols", {"symbols": ["SOLUSDT", "BNBUSDT"]}),  # 2 + 2 > 3
        ("kline.add_symbols", {"symbols": ["AUSDT", "BUSDT", "CUSDT", "DUSDT"]}),  # 4 > 3
        ("kline.add_symbols", {"symbols": ["SOLUSDT", "bad one"]}),
        ("kline.add_symbols", {"symbols": ["SOLUSDT", "NOTLISTED"]}),
        ("kline.add_symbols", {"symbols": "SOLUSDT"}),
        ("kline.add_symbols", {"symbols": []}),
        ("kline.add_symbols", {}),
        ("kline.history", {"symbol": "BTCUSDT", "interval": "1m", "limit": 0}),
        ("kline.history", {"symbol": "BTCUSDT", "interval": "2h"}),
        ("kline.history", {"symbol": "BTCUSDT", "interval": "1m", "start": 5, "end": 1}),
        ("get.market_data", {"symbols": ["no way"]}),
        ("get.market_data", {"symbols": []}),
        ("kline.status", {"verbose": True}),
    ]
    for method, params in bad:
        reply = agent.request(method, params)
        assert reply["status"] == "error", (method, params, reply)
        assert reply["error"]["code"] == "INVALID_PARAMS", (method, params, reply)
        assert reply["error"]["details"], (method, params)
    assert agent.call("kline.symbols")["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert agent.call("kline.symbols")["stream_count"] == 14
    assert agent.call("kline.add_symbols", {"symbols": ["SOLUSDT"]})["status"] == "ok"  # 3 is allowed
    try:
        agent.call("kline.add_stream", {"symbol": "BNBUSDT", "interval": "1m"})
        raise AssertionError("a 4th symbol was accepted")
    except RemoteError as exc:
        assert exc.code == "INVALID_PARAMS"


def test_history_times_past_what_the_store_holds_are_invalid_params_not_wrapped_around(
        sim: ExchangeSimulator, agent_factory: Callable[..., Agent]) -> None:
    agent = agent_factory(sim, ["BTCUSDT"])
    agent.wait_flowing(7)
    newest = wait_until(lambda: agent.history("BTCUSDT", "1m")[-1:], 10, "a stored candle")[0]["open_time"]
    for field in ("start", "end"):
        for value in (2**63, 2**63 + 12345, 2**64 - 1):
            reply = agent.request("kline.history", {"symbol": "BTCUSDT", "interval": "1m", field: value})
            assert reply["status"] == "error" and reply["error"]["code"] == "INVALID_PARAMS", (field, value, reply)
            assert reply["error"]["details"][0]["field"] == field
    # the largest value the store holds is a valid bound: no candle opens after it, every stored one before it
    assert agent.history("BTCUSDT", "1m", start=2**63 - 1) == []
    assert agent.history("BTCUSDT", "1m", end=2**63 - 1)[-1]["open_time"] >= newest


def test_closed_candles_publish_data_ready_matching_storage_and_market_data_answers(
        sim: ExchangeSimulator, agent_factory: Callable[..., Agent], storage_env: dict[str, str]) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"  # storage_env: embedded chDB, then a ClickHouse server (CLICKHOUSE_URL)
    agent = agent_factory(sim, ["BTCUSDT"], REDIS_URL=REDIS_URL, TACORE_INGEST_CACHE_PREFIX=prefix, **storage_env)
    subscriber = EventSubscriber(agent.events_endpoint, ("kline.BTCUSDT.1m",))
    r = redis.Redis.from_url(REDIS_URL)
    try:
        agent.wait_flowing(7)
        events = []
        deadline = time.monotonic() + 5
        while len(events) < 5 and time.monotonic() < deadline:
            got = subscriber.recv(200)
            if got is not None:
                events.append(got)
        assert len(events) >= 5
        for topic, event in events:
            assert topic == "kline.BTCUSDT.1m" and event["event"] == "DATA_READY"
            assert event["symbol"] == "BTCUSDT" and event["interval"] == "1m" and event["candle"]["closed"]
            assert event["ts_publish"] > 0 and event["ts_event"] >= event["candle"]["close_time"]
        times = [event["candle"]["open_time"] for _, event in events]
        assert len(set(times)) == len(times), "one DATA_READY per closed candle"
        last = events[-1][1]["candle"]
        def announced_candle_stored() -> list[dict[str, object]]:
            rows = agent.history("BTCUSDT", "1m", start=last["open_time"], end=last["open_time"])
            return rows if rows and rows[0]["closed"] else []

        stored = wait_until(announced_candle_stored, 3, "the announced candle in storage")
        assert stored == [last]

        wait_until(lambda: r.exists(f"{prefix}BTCUSDT"), 3, "the price in Redis")
        reply = agent.call("get.market_data", {"symbols": ["BTCUSDT", "ETHUSDT"]})
        btc = reply["symbols"]["BTCUSDT"]
        assert btc["status"] == "ok" and btc["source"] == "cache" and btc["price"] > 0
        assert btc["candle_1m"]["close"] > 0 and btc["candle_1d"]["open_time"] % 86_400_000 == 0
        assert btc["event_time"] > 0 and 0 < r.ttl(f"{prefix}BTCUSDT") <= 300
        assert reply["symbols"]["ETHUSDT"] == {"symbol": "ETHUSDT", "market": "CRYPTO", "status": "no_data"}
        assert reply["no_data"] == ["ETHUSDT"]
        status = agent.status()
        assert status["cache"]["kind"] == "redis" and status["cache_hits"] >= 1 and status["cache_misses"] >= 1
        assert status["storage"]["state"] == "up"
        assert status["storage"]["kind"] == ("clickhouse" if storage_env else "chdb")
    finally:
        subscriber.close()
        keys = list(r.scan_iter(match=f"{prefix}*"))
        if keys:
            r.delete(*keys)
        r.close()


def test_100_symbols_x_7_intervals_flow_on_2_connections_within_3_s_of_a_cold_start(
        sim_factory: Callable[..., ExchangeSimulator], agent_factory: Callable[..., Agent]) -> None:
    sim = sim_factory(update_interval_ms=500.0)  # 1,400 messages/s: the test box has 2 cores for both sides
    symbols = [f"S{n:03d}USDT" for n in range(100)]
    agent = agent_factory(sim, symbols, TACORE_INGEST_STALL_S="2.0")
    status = agent.wait_flowing(700, timeout=15)
    assert status["connection_count"] <= 2
    assert status["all_streams_flowing_after_s"] is not None and status["all_streams_flowing_after_s"] <= 3.0
    stats = sim_get(sim, "/_sim/stats")
    assert stats["live_connections"] <= 2 and stats["connections_accepted"] <= 2
    assert stats["active_streams"] == 700
    assert "1008" not in {str(code) for code in stats["closes_by_code"]}, "frame-rate limit tripped"
    wait_complete(agent, sim, [(symbols[0], i) for i in INTERVALS[:3]] + [(symbols[-1], "1m")],
                  spanning=None, timeout=10)
    print(f"cold start: 700 streams flowing {status['all_streams_flowing_after_s']} s after the agent's start, "
          f"{time.monotonic() - agent.launched_at:.2f} s after its process was launched")
