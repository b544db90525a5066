"""kline.* handlers: every bad input is INVALID_PARAMS with details, nothing is half-added, and replies
carry the seed's field names (get.market_data: test_market_data_method.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tacore.errors import ErrorCode, InvalidParams, TACoreError
from tacore.intervals import INTERVALS
from workers.ingest.normalise import stream_name
from workers.methods import klines
from workers.registry import CallContext, MethodRegistry


class FakeService:
    """A data agent stand-in that records what it was asked to do."""

    def __init__(self, max_symbols: int = 3) -> None:
        self.max_symbols = max_symbols
        self.streams: dict[str, list[str]] = {}
        self.calls: list[tuple[str, Any]] = []
        self.pending: set[str] = set()

    def add_streams(self, pairs: list[tuple[str, str]], market: str | None = None) -> dict[str, bool]:
        self.calls.append(("add", pairs) if market is None else ("add", pairs, market))
        symbols = {s for s, _ in pairs} | set(self.streams)
        if len(symbols) > self.max_symbols:
            raise InvalidParams("over", details=[{"field": "symbols", "message": "too many"}])
        for s, i in pairs:
            if i not in self.streams.setdefault(s, []):
                self.streams[s].append(i)
        return {stream_name(s, i): s not in self.pending for s, i in pairs}

    def remove_streams(self, pairs: list[tuple[str, str]]) -> list[str]:
        gone = []
        for s, i in pairs:
            if i in self.streams.get(s, []):
                self.streams[s].remove(i)
                gone.append(stream_name(s, i))
        return gone

    def subscriptions(self) -> dict[str, list[str]]:
        return {s: list(v) for s, v in self.streams.items() if v}

    def markets_of(self, symbols: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for symbol in symbols:
            out.setdefault("CRYPTO" if symbol.endswith("USDT") else "US", []).append(symbol)
        return out

    def connections(self) -> list[dict[str, Any]]:
        return [{"id": 1, "streams": [], "connected_since": 1.0, "last_message": 2.0, "messages_received": 3}]

    def status(self) -> dict[str, Any]:
        return {"status": "ok", "connection_count": 1, "symbols": sorted(self.subscriptions())}

    def history(self, symbol: str, interval: str, start: int | None, end: int | None,
                limit: int) -> list[dict[str, Any]]:
        self.calls.append(("history", (symbol, interval, start, end, limit)))
        return []


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def registry(service: FakeService) -> MethodRegistry:
    reg = MethodRegistry()
    reg.include(klines.build_registry(service))
    return reg


def call(registry: MethodRegistry, method: str, params: dict[str, Any]) -> Any:
    spec = registry.get(method)
    assert spec is not None
    return spec.invoke(params, CallContext("r1", method, "test"))


def rejected(registry: MethodRegistry, method: str, params: Any) -> TACoreError:
    with pytest.raises(TACoreError) as info:
        call(registry, method, params)
    assert info.value.code == ErrorCode.INVALID_PARAMS
    assert info.value.details, "INVALID_PARAMS must say what is wrong"
    return info.value


@pytest.mark.parametrize("params", [
    {"symbol": "BTC-USDT", "interval": "1m"}, {"symbol": "", "interval": "1m"}, {"symbol": 42, "interval": "1m"},
    {"symbol": "X" * 21, "interval": "1m"}, {"symbol": "BTCUSDT", "interval": "2h"},
    {"symbol": "BTCUSDT", "interval": "1M"}, {"symbol": "BTCUSDT", "interval": None}, {"symbol": "BTCUSDT"},
    {"interval": "1m"}, {"symbol": "BTCUSDT", "interval": "1m", "extra": 1},
])
@pytest.mark.parametrize("method", ["kline.add_stream", "kline.remove_stream", "kline.history"])
def test_bad_stream_params_are_invalid_params_and_nothing_is_added(
        registry: MethodRegistry, service: FakeService, method: str, params: dict[str, Any]) -> None:
    rejected(registry, method, params)
    assert service.calls == [] and service.streams == {}


@pytest.mark.parametrize("params", [
    {}, {"symbols": []}, {"symbols": "BTCUSDT"}, {"symbols": ["BTCUSDT", "bad symbol"]},
    {"symbols": ["BTCUSDT", None]}, {"symbols": ["BTCUSDT"], "intervals": ["1m"]},
    {"symbols": ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"]},  # over max_symbols=3
])
def test_bad_add_symbols_is_invalid_params_and_nothing_is_added(
        registry: MethodRegistry, service: FakeService, params: dict[str, Any]) -> None:
    error = rejected(registry, "kline.add_symbols", params)
    assert service.streams == {}
    if "bad symbol" in str(params):
        assert "[1]" in str(error.details)


@pytest.mark.parametrize("params", [
    {"symbol": "BTCUSDT", "interval": "1m", "limit": 0}, {"symbol": "BTCUSDT", "interval": "1m", "limit": 1001},
    {"symbol": "BTCUSDT", "interval": "1m", "start": -1}, {"symbol": "BTCUSDT", "interval": "1m", "start": "x"},
    {"symbol": "BTCUSDT", "interval": "1m", "start": 10, "end": 5},
])
def test_bad_history_ranges_are_invalid_params(registry: MethodRegistry, params: dict[str, Any]) -> None:
    rejected(registry, "kline.history", params)


def test_add_symbols_reply_has_the_seed_shape(registry: MethodRegistry, service: FakeService) -> None:
    call(registry, "kline.add_stream", {"symbol": "ETHUSDT", "interval": "1m"})
    service.pending = {"SOLUSDT"}
    reply = call(registry, "kline.add_symbols", {"symbols": ["ethusdt", "SOLUSDT", "ETHUSDT"]})
    assert reply["status"] == "partial"
    assert [r["symbol"] for r in reply["results"]] == ["ETHUSDT", "SOLUSDT"]
    eth, sol = reply["results"]
    assert eth["status"] == "ok" and eth["already_subscribed"] == ["1m"] and len(eth["added"]) == 6
    assert sol["status"] == "pending" and sol["pending"] == list(INTERVALS)
    assert reply["current_status"] == {"status": "ok", "connection_count": 1, "symbols": ["ETHUSDT", "SOLUSDT"]}
    assert reply["summary"] == {"total": 2, "succeeded": 1, "pending": 1, "streams_added": 13, "stream_count": 14}


def test_stream_and_listing_replies_carry_the_seed_field_names(registry: MethodRegistry) -> None:
    added = call(registry, "kline.add_stream", {"symbol": "btcusdt", "interval": "5m"})
    assert added["status"] == "ok" and "message" in added and added["stream"] == "btcusdt@kline_5m"
    assert added["added"] is True and added["flowing"] is True
    again = call(registry, "kline.add_stream", {"symbol": "BTCUSDT", "interval": "5m"})
    assert again["added"] is False
    symbols = call(registry, "kline.symbols", {})
    assert symbols["symbols"] == ["BTCUSDT"] and symbols["count"] == 1
    conns = call(registry, "kline.connections", {})
    assert conns["count"] == conns["connection_count"] == 1 and len(conns["connections"]) == 1
    removed = call(registry, "kline.remove_stream", {"symbol": "BTCUSDT", "interval": "5m"})
    assert removed["status"] == "ok" and removed["removed"] is True and "message" in removed
    assert call(registry, "kline.remove_stream", {"symbol": "BTCUSDT", "interval": "5m"})["removed"] is False
