"""get.market_data: symbols of any market validate (AAPL, BRK.B, BTCUSDT), unknown ones are INVALID_PARAMS
naming the markets; a cache hit is answered from the cache alone (24 h figures included), only misses
read the store, and a symbol without data is reported, not dropped."""

from __future__ import annotations

from typing import Any

import pytest

from tacore.errors import ErrorCode, TACoreError
from tacore.markets import load_markets
from tacore.markets.ticker import Ticker24h
from tacore.store.price_cache import PriceSnapshot
from workers.methods import market
from workers.registry import CallContext, MethodRegistry

CANDLE = {"open_time": 0, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 9.0, "closed": False,
          "close_time": 59_999, "symbol": "X", "interval": "1m"}
TICKER = Ticker24h(86_400_005, 100.0, 0, 120.0, 95.0, 5000.0, 550_000.0, 288)


class FakeMarket:
    """The agent's market view, with a cache and a store as dicts; records what it was asked."""

    def __init__(self) -> None:
        self.max_symbols = 4
        self.markets = load_markets(None)
        self.cache: dict[str, PriceSnapshot] = {
            "BTCUSDT": PriceSnapshot("BTCUSDT", 110.0, 86_400_005, {"1m": CANDLE, "1d": CANDLE}, TICKER)}
        self.store: dict[str, PriceSnapshot] = {
            "AAPL": PriceSnapshot("AAPL", 190.0, 5, {"1m": CANDLE}, None)}
        self.asked: list[tuple[str, list[str]]] = []

    def cached_snapshots(self, symbols: list[str]) -> dict[str, PriceSnapshot | None]:
        self.asked.append(("cache", symbols))
        return {s: self.cache.get(s) for s in symbols}

    def stored_snapshots(self, symbols: list[str]) -> dict[str, PriceSnapshot]:
        self.asked.append(("store", symbols))
        return {s: self.store[s] for s in symbols if s in self.store}


@pytest.fixture
def service() -> FakeMarket:
    return FakeMarket()


@pytest.fixture
def registry(service: FakeMarket) -> MethodRegistry:
    return market.build_registry(service)


def call(registry: MethodRegistry, params: Any) -> Any:
    spec = registry.get("get.market_data")
    assert spec is not None
    return spec.invoke(params, CallContext("r1", "get.market_data", "test"))


def rejected(registry: MethodRegistry, params: Any) -> TACoreError:
    with pytest.raises(TACoreError) as info:
        call(registry, params)
    assert info.value.code == ErrorCode.INVALID_PARAMS and info.value.details
    return info.value


def test_a_hit_is_answered_from_the_cache_with_its_24h_figures(registry: MethodRegistry,
                                                              service: FakeMarket) -> None:
    reply = call(registry, {"symbols": ["btcusdt"]})
    btc = reply["symbols"]["BTCUSDT"]
    assert service.asked == [("cache", ["BTCUSDT"])], "a hit needs no store read"
    assert btc["source"] == "cache" and btc["market"] == "CRYPTO" and btc["price"] == 110.0
    assert btc["change_24h"] == pytest.approx(10.0) and btc["change_24h_pct"] == pytest.approx(10.0)
    assert (btc["high_24h"], btc["low_24h"], btc["volume_24h"], btc["quote_volume_24h"]) == (120.0, 95.0, 5000.0,
                                                                                          550_000.0)
    assert btc["ref_price_24h"] == 100.0 and btc["candle_1m"]["close"] == 1.5 and "symbol" not in btc["candle_1m"]


def test_misses_are_read_from_the_store_in_one_call_and_no_data_is_reported(registry: MethodRegistry,
                                                                           service: FakeMarket) -> None:
    reply = call(registry, {"symbols": ["BTCUSDT", "AAPL", "MSFT", "BRK.B"]})
    assert service.asked == [("cache", ["BTCUSDT", "AAPL", "MSFT", "BRK.B"]), ("store", ["AAPL", "MSFT", "BRK.B"])]
    aapl = reply["symbols"]["AAPL"]
    assert aapl["source"] == "store" and aapl["market"] == "US" and aapl["price"] == 190.0
    assert aapl["change_24h"] is None and aapl["volume_24h"] is None and aapl["candle_1d"] is None
    assert reply["symbols"]["MSFT"] == {"symbol": "MSFT", "market": "US", "status": "no_data"}
    assert reply["no_data"] == ["MSFT", "BRK.B"] and reply["count"] == 4


@pytest.mark.parametrize("params", [
    {}, {"symbols": []}, {"symbols": "AAPL"}, {"symbols": ["AAPL", "BTC-USDT"]}, {"symbols": ["X" * 21]},
    {"symbols": [None]}, {"symbols": ["AAPL"], "extra": 1},
    {"symbols": ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA"]},  # over max_symbols=4
])
def test_bad_params_are_invalid_params_with_details(registry: MethodRegistry, params: Any) -> None:
    rejected(registry, params)


def test_a_symbol_no_market_lists_is_invalid_params_naming_the_markets(registry: MethodRegistry,
                                                                       service: FakeMarket) -> None:
    error = rejected(registry, {"symbols": ["AAPL", "1234567", "TOOLONGTICKER"]})
    assert [d["symbol"] for d in error.details] == ["1234567", "TOOLONGTICKER"]
    assert error.details[0]["markets"] == ["CRYPTO", "US"] and "CRYPTO" in error.message
    assert service.asked == [], "nothing is read for a call that is refused"
