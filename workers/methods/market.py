"""get.market_data: per symbol of any market, the last price, the current 1m and 1d candles and the
rolling 24 h figures (change, high, low, volume, quote volume).

One price-cache round trip answers every symbol found there (a hit: the writer keeps the 24 h figures
in the cache next to the price, so no store query); the others are read from the candle store in one
go (a miss). A symbol belongs to a market when ``trading_config.yaml`` says so (a crypto pair, a US
ticker such as ``AAPL`` or ``BRK.B``); one no market claims is INVALID_PARAMS naming the markets. A
symbol with no data at all is answered ``{"status": "no_data"}``, never dropped.

The 24 h window ends at the symbol's last event time, so a stock on a weekend compares with the
previous session (see ``tacore.markets.ticker``); without 24 h of history the figures are null.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tacore.errors import InvalidParams
from tacore.markets import MarketRegistry
from tacore.markets.ticker import TICKER_INTERVAL, Ticker24h
from tacore.store.price_cache import PriceSnapshot
from workers.registry import CallContext, MethodRegistry

_OHLCV = ("open_time", "open", "high", "low", "close", "volume", "closed")
#: the shape of a symbol in any market (``BTCUSDT``, ``AAPL``, ``BRK.B``); which market is asked next
_SYMBOL_SHAPE = re.compile(r"^[A-Z0-9][A-Z0-9.]{0,19}$")
_NO_TICKER = Ticker24h(0, None, None, None, None, None, None, 0)


class MarketService(Protocol):
    max_symbols: int
    markets: MarketRegistry

    def cached_snapshots(self, symbols: list[str]) -> dict[str, PriceSnapshot | None]:
        """The price cache's entries (None: not there, or later than the source's clock)."""
        ...

    def stored_snapshots(self, symbols: list[str]) -> dict[str, PriceSnapshot]:
        """Built from the candle store, for the symbols it holds; raises Unavailable when it is down."""
        ...


def check_any_symbols(value: Any) -> list[str]:
    """A list of symbols of any market's shape, upper-cased, duplicates dropped, every bad one named."""
    if not isinstance(value, list):
        raise ValueError("symbols must be a list of symbols")
    symbols, problems = [], []
    for index, item in enumerate(value):
        symbol = item.strip().upper() if isinstance(item, str) else None
        if symbol is None or not _SYMBOL_SHAPE.match(symbol):
            problems.append(f"[{index}] invalid symbol {item!r}: 1-20 letters, digits or dots, e.g. BTCUSDT or AAPL")
        else:
            symbols.append(symbol)
    if problems:
        raise ValueError("; ".join(problems))
    return list(dict.fromkeys(symbols))


class MarketDataParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbols: list[str] = Field(min_length=1)

    _symbols = field_validator("symbols", mode="before")(check_any_symbols)


def _ohlcv(candle: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if candle is None else {key: candle[key] for key in _OHLCV}


def market_entry(symbol: str, market: str, snap: PriceSnapshot | None, source: str) -> dict[str, Any]:
    """One symbol's reply from a snapshot (cache or store)."""
    if snap is None:
        return {"symbol": symbol, "market": market, "status": "no_data"}
    t = snap.ticker or _NO_TICKER
    change, pct = t.change(snap.price)
    return {
        "symbol": symbol, "market": market, "status": "ok", "price": snap.price, "event_time": snap.event_time,
        "candle_1m": _ohlcv(snap.candles.get("1m")), "candle_1d": _ohlcv(snap.candles.get("1d")),
        "change_24h": change, "change_24h_pct": pct, "high_24h": t.high, "low_24h": t.low,
        "volume_24h": t.volume, "quote_volume_24h": t.quote_volume, "ref_price_24h": t.ref_price,
        "ref_time_24h": t.ref_time, "source": source,
    }


def build_registry(service: MarketService) -> MethodRegistry:
    registry = MethodRegistry()

    @registry.method("get.market_data", idempotent=True)
    def get_market_data(params: MarketDataParams, ctx: CallContext) -> dict[str, Any]:
        """Per symbol: price, current 1m and 1d OHLCV, rolling 24 h figures, event time (or status no_data)."""
        symbols = params.symbols
        if len(symbols) > service.max_symbols:
            raise InvalidParams(f"at most {service.max_symbols} symbols per call",
                                details=[{"field": "symbols", "message": f"at most {service.max_symbols}"}])
        markets = {symbol: service.markets.market_of(symbol) for symbol in symbols}
        unknown = [symbol for symbol, market in markets.items() if market is None]
        if unknown:
            known = ", ".join(f"{m.name} ({m.symbol_pattern})" for m in service.markets)
            raise InvalidParams(f"no market lists {', '.join(unknown)}; markets: {known}",
                                details=[{"field": "symbols", "symbol": s, "message": f"{s}: no market lists it",
                                          "markets": service.markets.names()} for s in unknown])
        cached = service.cached_snapshots(symbols)
        missing = [symbol for symbol in symbols if cached.get(symbol) is None]
        if missing:
            ctx.check()  # past the deadline (or cancelled) the store is not read: the client has its answer
        stored = service.stored_snapshots(missing) if missing else {}
        data = {}
        for symbol in symbols:
            market = markets[symbol].name  # type: ignore[union-attr]
            snap = cached.get(symbol)
            data[symbol] = (market_entry(symbol, market, snap, "cache") if snap is not None
                            else market_entry(symbol, market, stored.get(symbol), "store"))
        no_data = [s for s, entry in data.items() if entry["status"] == "no_data"]
        return {"symbols": data, "count": len(data), "no_data": no_data, "window_interval": TICKER_INTERVAL}

    return registry
