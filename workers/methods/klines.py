"""kline.* methods: the data agent's stream set, its connections, its health and the stored candles.

Handlers validate and shape replies; the work is done by a ``KlineService`` (the data agent), which
they call from the worker thread. Reply fields keep the names of the seed's HTTP API (the sidecar
forwards ``/symbols``, ``/status``, ``/connections/*``, ``/streams/*``, ``/symbols/add`` to these).
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tacore.errors import InvalidParams
from tacore.health import data_plane_status
from tacore.intervals import INTERVALS, MAX_TIME_MS, check_interval
from workers.ingest.normalise import SYMBOL_RE, stream_name
from workers.registry import CallContext, MethodRegistry

MAX_HISTORY_LIMIT = 1000


class KlineService(Protocol):
    """What the handlers need from the data agent; every call is thread-safe."""

    max_symbols: int

    def add_streams(self, pairs: list[tuple[str, str]], market: str | None = None) -> dict[str, bool]:
        """Add (idempotent) and wait briefly; stream name -> flowing. Each symbol goes to its market's feed
        (``market`` forces one). Raises InvalidParams (a symbol of no market too), adds nothing."""
        ...

    def markets_of(self, symbols: list[str]) -> dict[str, list[str]]:
        """Symbols by market name."""
        ...

    def remove_streams(self, pairs: list[tuple[str, str]]) -> list[str]: ...
    def subscriptions(self) -> dict[str, list[str]]: ...
    def connections(self) -> list[dict[str, Any]]: ...
    def status(self) -> dict[str, Any]: ...
    def history(self, symbol: str, interval: str, start: int | None, end: int | None,
                limit: int) -> list[dict[str, Any]]: ...


def check_symbol(value: Any) -> str:
    """Upper-case symbol of any market, e.g. ``BTCUSDT``, ``AAPL``, ``BRK.B``; raises ValueError
    (-> INVALID_PARAMS) otherwise. Which market it belongs to is checked by the data agent."""
    if not isinstance(value, str):
        raise ValueError("symbol must be a string")
    symbol = value.strip().upper()
    if not SYMBOL_RE.match(symbol):
        raise ValueError(f"invalid symbol {value!r}: 1-20 letters or digits (a share class after a dot), "
                         "e.g. BTCUSDT, AAPL, BRK.B")
    return symbol


def check_symbols(value: Any) -> list[str]:
    """A list of symbols, checked one by one (every bad one named), duplicates dropped, order kept."""
    if not isinstance(value, list):
        raise ValueError("symbols must be a list of symbols")
    symbols, problems = [], []
    for index, item in enumerate(value):
        try:
            symbols.append(check_symbol(item))
        except ValueError as exc:
            problems.append(f"[{index}] {exc}")
    if problems:
        raise ValueError("; ".join(problems))
    return list(dict.fromkeys(symbols))


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoParams(_Params):
    pass


class StreamParams(_Params):
    symbol: str
    interval: str
    market: str | None = Field(None, description="force a market (CRYPTO, US); default: the symbol's market")

    _symbol = field_validator("symbol", mode="before")(check_symbol)
    _interval = field_validator("interval", mode="before")(check_interval)


class SymbolsParams(_Params):
    symbols: list[str] = Field(min_length=1)
    market: str | None = Field(None, description="force a market (CRYPTO, US); default: each symbol's market")

    _symbols = field_validator("symbols", mode="before")(check_symbols)




class HistoryParams(_Params):
    symbol: str
    interval: str
    start: int | None = Field(None, ge=0, le=MAX_TIME_MS, description="first open time, epoch ms")
    end: int | None = Field(None, ge=0, le=MAX_TIME_MS, description="last open time, epoch ms")
    limit: int = Field(500, ge=1, le=MAX_HISTORY_LIMIT)

    _symbol = field_validator("symbol", mode="before")(check_symbol)
    _interval = field_validator("interval", mode="before")(check_interval)

    @model_validator(mode="after")
    def _range(self) -> HistoryParams:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("end is before start")
        return self


def _over_limit(service: KlineService, symbols: list[str]) -> None:
    if len(symbols) > service.max_symbols:
        raise InvalidParams(
            f"{len(symbols)} symbols requested, over DATA_AGENT_MAX_SYMBOL ({service.max_symbols})",
            details=[{"field": "symbols", "message": f"at most {service.max_symbols} symbols"}])


def current_status(service: KlineService) -> dict[str, Any]:
    """The seed's ``/status`` shape."""
    status = service.status()
    return {"status": status["status"], "connection_count": status["connection_count"],
            "symbols": status["symbols"]}


def build_registry(service: KlineService) -> MethodRegistry:
    registry = MethodRegistry()

    @registry.method("kline.add_stream", idempotent=True, role="admin")
    def add_stream(params: StreamParams) -> dict[str, Any]:
        """Start one stream; answers once the exchange confirmed it (or after a short wait: pending)."""
        name = stream_name(params.symbol, params.interval)
        already = params.interval in service.subscriptions().get(params.symbol, [])
        flowing = service.add_streams([(params.symbol, params.interval)], params.market)[name]
        state = "already subscribed" if already else ("subscribed" if flowing else "subscription pending")
        market = service.markets_of([params.symbol])
        return {"status": "ok", "message": f"{name}: {state}", "symbol": params.symbol,
                "interval": params.interval, "stream": name, "added": not already, "flowing": flowing,
                "market": next(iter(market), None)}

    @registry.method("kline.remove_stream", idempotent=True, role="admin")
    def remove_stream(params: StreamParams) -> dict[str, Any]:
        """Stop one stream (stored candles stay)."""
        name = stream_name(params.symbol, params.interval)
        removed = bool(service.remove_streams([(params.symbol, params.interval)]))
        return {"status": "ok", "message": f"{name}: {'removed' if removed else 'was not subscribed'}",
                "symbol": params.symbol, "interval": params.interval, "stream": name, "removed": removed}

    @registry.method("kline.add_symbols", idempotent=True, role="admin")
    def add_symbols(params: SymbolsParams) -> dict[str, Any]:
        """All 7 intervals of each symbol; all or nothing on bad input; ``partial`` if some still pending."""
        _over_limit(service, params.symbols)
        before = service.subscriptions()
        flowing = service.add_streams([(s, i) for s in params.symbols for i in INTERVALS], params.market)
        markets = {symbol: name for name, symbols in service.markets_of(params.symbols).items() for symbol in symbols}
        results: list[dict[str, Any]] = []
        for symbol in params.symbols:
            had = set(before.get(symbol, []))
            pending = [i for i in INTERVALS if not flowing[stream_name(symbol, i)]]
            results.append({
                "symbol": symbol, "market": markets.get(symbol), "status": "pending" if pending else "ok",
                "intervals": list(INTERVALS),
                "added": [i for i in INTERVALS if i not in had],
                "already_subscribed": [i for i in INTERVALS if i in had],
                "pending": pending,
            })
        succeeded = sum(1 for r in results if r["status"] == "ok")
        return {
            "status": "ok" if succeeded == len(results) else "partial",
            "results": results,
            "current_status": current_status(service),
            "summary": {"total": len(results), "succeeded": succeeded, "pending": len(results) - succeeded,
                        "streams_added": sum(len(r["added"]) for r in results),
                        "stream_count": sum(len(v) for v in service.subscriptions().values())},
        }

    @registry.method("kline.symbols", idempotent=True)
    def symbols(params: NoParams) -> dict[str, Any]:
        """Subscribed symbols and their intervals."""
        subs = service.subscriptions()
        return {"symbols": sorted(subs), "count": len(subs), "streams": subs,
                "stream_count": sum(len(v) for v in subs.values()), "markets": service.markets_of(sorted(subs))}

    @registry.method("kline.connections", idempotent=True)
    def connections(params: NoParams) -> dict[str, Any]:
        """Exchange connections: streams, connected since, last message, messages received."""
        conns = service.connections()
        return {"connection_count": len(conns), "count": len(conns), "connections": conns}

    @registry.method("kline.status", idempotent=True)
    def status(params: NoParams, ctx: CallContext) -> dict[str, Any]:
        """Feed, storage, cache and backfill counters (the sidecar's metrics read these), and the dependency
        states: the broker's set (``tacore.health``, as /health and health.check show it) once its heartbeat
        has brought one, else this agent's own assessment of its data plane."""
        reply = service.status()
        shared = ctx.broker.get("health") or {}
        dependencies = shared.get("dependencies")
        if dependencies:
            reply["dependencies"] = dependencies
            reply["assessed_at"] = shared.get("checked_at")
            reply["status"] = data_plane_status(dependencies)
        return reply

    @registry.method("kline.history", idempotent=True)
    def history(params: HistoryParams) -> dict[str, Any]:
        """Stored candles, oldest first, one per open time (with ``start``: from it; else the latest)."""
        candles = service.history(params.symbol, params.interval, params.start, params.end, params.limit)
        return {"symbol": params.symbol, "interval": params.interval, "count": len(candles), "candles": candles}

    return registry
