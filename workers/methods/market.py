"""get.market_data: last price, the current 1m and 1d candles, the 24 h change, per symbol.

The latest candles come from the price cache (Redis or memory: a hit), else from the candle store
(a miss). The 24 h change compares the last price with the open of the 1h candle that was running
24 hours before the last event (hourly resolution, from the store). A symbol with no data at all is
answered ``{"status": "no_data"}``, never dropped.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tacore.errors import InvalidParams
from tacore.store.price_cache import PriceSnapshot
from workers.methods.klines import check_symbols
from workers.registry import CallContext, MethodRegistry

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
_OHLCV = ("open_time", "open", "high", "low", "close", "volume", "closed")


class MarketService(Protocol):
    max_symbols: int

    def price_snapshot(self, symbol: str) -> PriceSnapshot | None: ...
    def latest_candle(self, symbol: str, interval: str) -> dict[str, Any] | None: ...
    def candle_at(self, symbol: str, interval: str, open_time: int) -> dict[str, Any] | None: ...


class MarketDataParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbols: list[str] = Field(min_length=1)

    _symbols = field_validator("symbols", mode="before")(check_symbols)


def _ohlcv(candle: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if candle is None else {key: candle[key] for key in _OHLCV}


def market_entry(service: MarketService, symbol: str) -> dict[str, Any]:
    snap = service.price_snapshot(symbol)
    source = "cache"
    if snap is None:
        source = "store"
        c1m, c1d = service.latest_candle(symbol, "1m"), service.latest_candle(symbol, "1d")
        newest = max((c for c in (c1m, c1d) if c is not None), key=lambda c: c["event_time"], default=None)
        if newest is None:
            return {"symbol": symbol, "status": "no_data"}
        price, event_time = float(newest["close"]), int(newest["event_time"])
    else:
        c1m, c1d = snap.candles.get("1m"), snap.candles.get("1d")
        price, event_time = snap.price, snap.event_time
    ref_time = event_time - DAY_MS
    ref = service.candle_at(symbol, "1h", ref_time - ref_time % HOUR_MS)
    change = pct = None
    if ref is not None and ref["open"]:
        change = price - float(ref["open"])
        pct = change / float(ref["open"]) * 100.0
    return {
        "symbol": symbol, "status": "ok", "price": price, "event_time": event_time,
        "candle_1m": _ohlcv(c1m), "candle_1d": _ohlcv(c1d),
        "change_24h": change, "change_24h_pct": pct, "source": source,
    }


def build_registry(service: MarketService) -> MethodRegistry:
    registry = MethodRegistry()

    @registry.method("get.market_data", idempotent=True)
    def get_market_data(params: MarketDataParams, ctx: CallContext) -> dict[str, Any]:
        """Per symbol: price, current 1m and 1d OHLCV, 24 h change, event time (or status no_data)."""
        if len(params.symbols) > service.max_symbols:
            raise InvalidParams(f"at most {service.max_symbols} symbols per call",
                                details=[{"field": "symbols", "message": f"at most {service.max_symbols}"}])
        data = {}
        for symbol in params.symbols:
            ctx.check()  # past the deadline (or cancelled) the rest is not read: the client has its answer
            data[symbol] = market_entry(service, symbol)
        missing = [s for s, entry in data.items() if entry["status"] == "no_data"]
        return {"symbols": data, "count": len(data), "no_data": missing}

    return registry
