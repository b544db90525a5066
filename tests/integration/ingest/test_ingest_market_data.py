"""get.market_data through the broker with a real agent, simulator and cache (Redis and memory): the 24 h
figures of a cache hit equal the ones computed from the stored candles, the stored candles equal the
exchange's, a miss read from the store says the same, and symbols of any market validate."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from ingest_harness import Agent, completeness, sim_get, streams_of

from tacore.exchange_sim.server import ExchangeSimulator
from tacore.intervals import INTERVALS
from tacore.markets.ticker import DAY_MS, ticker_of
from tacore.store.klines import KlineRow, version_of
from tests.support.processes import wait_until

REDIS_URL = "redis://127.0.0.1:6379/0"
STEP = 300_000
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture(params=["memory", "redis"])
def cache_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "memory":
        yield {}
        return
    prefix = f"test:{uuid.uuid4().hex}:"
    yield {"REDIS_URL": REDIS_URL, "TACORE_INGEST_CACHE_PREFIX": prefix}
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def as_row(candle: dict[str, Any]) -> KlineRow:
    """A stored candle as the ticker takes it (a closed one is an event at its end)."""
    event = candle["close_time"] if candle["closed"] else candle["open_time"] + STEP // 2
    return KlineRow(candle["symbol"], candle["interval"], candle["open_time"], candle["close_time"], candle["open"],
                    candle["high"], candle["low"], candle["close"], candle["volume"], candle["quote_volume"],
                    candle["trades"], candle["taker_buy_base_volume"], candle["taker_buy_quote_volume"],
                    candle["closed"], event, version_of(candle["closed"], event))


def market(agent: Agent, symbols: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = agent.call("get.market_data", {"symbols": symbols})
    return data



def hit_with_figures(agent: Agent, symbols: list[str]) -> dict[str, Any] | None:
    """``get.market_data`` once every symbol is a cache hit with its 24 h figures (each symbol's reference comes
    with its own stream, so the first symbol's says nothing of the others')."""
    data = market(agent, symbols)
    entries = data["symbols"].values()
    return data if all(e["source"] == "cache" and e["change_24h"] is not None for e in entries) else None

def test_24h_figures_of_a_hit_and_a_miss_equal_the_stored_day_which_equals_the_exchanges(
        sim: ExchangeSimulator, agent_factory: Callable[..., Agent], cache_env: dict[str, str]) -> None:
    agent = agent_factory(sim, SYMBOLS, HISTORY_DEPTH="3", HISTORY_DEPTH_PER_INTERVAL=json.dumps({"5m": 320}),
                          PRICE_TTL_S="2", **cache_env)
    wait_until(lambda: agent.status()["history"]["done"], 30, "the history fetch", interval=0.2)
    hit = wait_until(lambda: hit_with_figures(agent, SYMBOLS), 10, "a hit with figures for every symbol")
    for symbol in SYMBOLS:  # a hit, live
        entry = hit["symbols"][symbol]
        assert entry["market"] == "CRYPTO" and entry["ref_time_24h"] <= entry["event_time"] - DAY_MS + STEP
        assert entry["change_24h"] == pytest.approx(entry["price"] - entry["ref_price_24h"])
        assert entry["high_24h"] >= entry["low_24h"] > 0 and entry["quote_volume_24h"] > entry["volume_24h"] > 0

    # freeze the symbols: the cached figures then describe exactly the stored candles
    for symbol in SYMBOLS:
        for interval in INTERVALS:
            agent.call("kline.remove_stream", {"symbol": symbol, "interval": interval})
    time.sleep(0.5)  # the writer's last round
    frozen = market(agent, SYMBOLS)["symbols"]
    for symbol in SYMBOLS:
        entry = frozen[symbol]
        assert entry["source"] == "cache"
        stored = agent.history(symbol, "5m", start=entry["ref_time_24h"] - 2 * STEP)
        expected = ticker_of([as_row(c) for c in stored])
        assert expected is not None and expected.ref_price == entry["ref_price_24h"]
        assert (entry["high_24h"], entry["low_24h"]) == (expected.high, expected.low)
        assert entry["volume_24h"] == pytest.approx(expected.volume)
        assert entry["quote_volume_24h"] == pytest.approx(expected.quote_volume)
        truth = sim_get(sim, "/_sim/closed", symbol=symbol, interval="5m", start=entry["ref_time_24h"] - STEP,
                        end=entry["ref_time_24h"] - STEP)["candles"]
        assert float(truth[0]["close"]) == entry["ref_price_24h"], "the reference is the exchange's candle"
    assert not completeness(agent, sim, streams_of(SYMBOLS, ("5m",)), spanning=None)

    # past PRICE_TTL_S the cache forgets them: a miss, read from the store, says the same
    missed = wait_until(lambda: (m := market(agent, SYMBOLS)["symbols"])["BTCUSDT"]["source"] == "store" and m,
                        10, "the cache entries to expire", interval=0.3)
    for symbol in SYMBOLS:
        for field in ("price", "ref_price_24h", "ref_time_24h", "high_24h", "low_24h"):
            assert missed[symbol][field] == frozen[symbol][field], (symbol, field)
        for field in ("change_24h", "volume_24h", "quote_volume_24h"):
            assert missed[symbol][field] == pytest.approx(frozen[symbol][field]), (symbol, field)
    status = agent.status()
    assert status["cache_hits"] > 0 and status["cache_misses"] > 0


def test_symbols_of_any_market_validate_and_unknown_ones_name_the_markets(
        sim: ExchangeSimulator, agent_factory: Callable[..., Agent]) -> None:
    agent = agent_factory(sim, ["BTCUSDT"])
    agent.wait_flowing(7)
    reply = wait_until(lambda: (m := market(agent, ["AAPL", "brk.b", "BTCUSDT"]))["symbols"]["BTCUSDT"]["status"]
                       == "ok" and m, 10, "the first price")
    assert reply["symbols"]["AAPL"] == {"symbol": "AAPL", "market": "US", "status": "no_data"}
    assert reply["symbols"]["BRK.B"]["market"] == "US" and reply["no_data"] == ["AAPL", "BRK.B"]
    assert reply["symbols"]["BTCUSDT"]["status"] == "ok"
    bad = agent.request("get.market_data", {"symbols": ["AAPL", "12345678"]})
    assert bad["status"] == "error" and bad["error"]["code"] == "INVALID_PARAMS"
    assert bad["error"]["details"][0]["symbol"] == "12345678"
    assert bad["error"]["details"][0]["markets"] == ["CRYPTO", "US"]
