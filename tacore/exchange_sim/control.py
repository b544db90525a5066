"""Fault injection and ground truth for tests: JSON routes under ``/_sim/`` on the REST port.

A test breaks the exchange the ways the real one breaks (clean close, TCP reset, serverShutdown,
stalled streams, half-open sockets, REST rate limits), then compares what the client stored with
``GET /_sim/closed``, the candles the exchange closed.
"""

from __future__ import annotations

import asyncio
from typing import Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tacore.exchange_sim.alpaca.hub import AlpacaHub
from tacore.exchange_sim.hub import Client, Hub
from tacore.exchange_sim.intervals import INTERVAL_MS, open_time_of
from tacore.exchange_sim.payloads import candle_record
from tacore.exchange_sim.spot.hub import SpotHub
from tacore.exchange_sim.streams import WsServer

MAX_CLOSED_ROWS = 100_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DisconnectBody(_Body):
    """``POST /_sim/disconnect``."""

    mode: Literal["close", "abort", "shutdown"] = "close"
    connection_id: int | None = None  # None = every connection
    grace_s: float = Field(0.0, ge=0, le=600)  # shutdown: delay between the event and the close


class PauseBody(_Body):
    """``POST /_sim/pause``: hold back data, keep pings."""

    seconds: float = Field(gt=0, le=3600)
    streams: list[str] | None = None  # None = every stream


class HalfOpenBody(_Body):
    """``POST /_sim/half_open``: total silence, then a TCP reset."""

    seconds: float = Field(gt=0, le=3600)
    connection_id: int | None = None


class RestFailuresBody(_Body):
    """``POST /_sim/rest_failures``: the next ``count`` klines calls (Alpaca bars calls; spot trading API
    calls) fail."""

    count: int = Field(1, ge=0, le=100_000)
    status: Literal[429, 418, 500, 503] = 429
    retry_after: int = Field(1, ge=0, le=3600)
    api: Literal["binance", "alpaca", "spot"] = "binance"


BodyT = TypeVar("BodyT", bound=_Body)


def _json(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


class ControlApi:
    """The ``/_sim/`` routes."""

    def __init__(self, hub: Hub, ws: WsServer, alpaca: AlpacaHub | None = None, spot: SpotHub | None = None) -> None:
        self.hub = hub
        self.ws = ws
        self.alpaca = alpaca
        self.spot = spot

    def routes(self) -> list[Route]:
        """Starlette routes for the control API."""
        return [
            Route("/_sim/stats", self.stats, methods=["GET"]),
            Route("/_sim/closed", self.closed, methods=["GET"]),
            Route("/_sim/disconnect", self.disconnect, methods=["POST"]),
            Route("/_sim/pause", self.pause, methods=["POST"]),
            Route("/_sim/half_open", self.half_open, methods=["POST"]),
            Route("/_sim/rest_failures", self.rest_failures, methods=["POST"]),
            Route("/_sim/reset_limits", self.reset_limits, methods=["POST"]),
        ]

    async def _body(self, request: Request, model: type[BodyT]) -> BodyT:
        raw = await request.body()
        return model.model_validate_json(raw or b"{}")

    def _targets(self, connection_id: int | None) -> list[Client]:
        clients = list(self.hub.clients.values())
        if connection_id is None:
            return clients
        return [c for c in clients if c.id == connection_id]

    async def stats(self, request: Request) -> Response:
        """Live connections and counters (the Alpaca side's under ``alpaca``)."""
        stats = self.hub.stats()
        if self.alpaca is not None:
            stats["alpaca"] = self.alpaca.stats()
        if self.spot is not None:
            stats["spot"] = self.spot.stats()
        return _json(stats)

    async def closed(self, request: Request) -> Response:
        """Every candle closed in [start, end] (open times), as the exchange closed it."""
        q = request.query_params
        symbol, interval = q.get("symbol", ""), q.get("interval", "")
        if not self.hub.is_listed(symbol) or interval not in INTERVAL_MS:
            return _json({"error": "unknown symbol or interval"}, 400)
        try:
            start = int(q["start"]) if "start" in q else self.hub.clock.start_ms
            end = int(q["end"]) if "end" in q else None
        except ValueError:
            return _json({"error": "start and end must be integers (epoch ms)"}, 400)
        now = self.hub.clock.now_ms()
        step = INTERVAL_MS[interval]
        first = max(0, open_time_of(start + step - 1, interval))
        last = open_time_of(now, interval) - step  # the last closed candle
        if end is not None:
            last = min(last, open_time_of(end, interval))
        count = max(0, (last - first) // step + 1) if last >= first else 0
        truncated = count > MAX_CLOSED_ROWS
        # generated off the loop: a long 1m range takes a while and the feed must not stall
        candles = await asyncio.to_thread(
            self.hub.market.closed_range, symbol, interval, first, min(count, MAX_CLOSED_ROWS)
        )
        return _json(
            {
                "symbol": symbol,
                "interval": interval,
                "sim_time_ms": now,
                "truncated": truncated,
                "candles": [candle_record(symbol, interval, c, True) for c in candles],
            }
        )

    async def disconnect(self, request: Request) -> Response:
        """Close, abort or shut down one connection or all of them."""
        try:
            body = await self._body(request, DisconnectBody)
        except ValidationError as exc:
            return _json({"error": exc.errors(include_url=False)}, 400)
        targets = self._targets(body.connection_id)
        for client in targets:
            if body.mode == "close":
                self.ws.close(client, 1000, "Closed by simulator")
            elif body.mode == "abort":
                self.ws.abort(client)
            else:
                self.ws.shutdown(client, body.grace_s)
        return _json({"mode": body.mode, "connections": [c.id for c in targets]})

    async def pause(self, request: Request) -> Response:
        """Stall streams: no data for ``seconds``, pings and pongs go on."""
        try:
            body = await self._body(request, PauseBody)
        except ValidationError as exc:
            return _json({"error": exc.errors(include_url=False)}, 400)
        self.hub.pause(body.seconds, body.streams)
        return _json({"streams": body.streams if body.streams is not None else "all", "seconds": body.seconds})

    async def half_open(self, request: Request) -> Response:
        """Make connections silent (no data, pings or pongs) for ``seconds``, then reset them."""
        try:
            body = await self._body(request, HalfOpenBody)
        except ValidationError as exc:
            return _json({"error": exc.errors(include_url=False)}, 400)
        targets = self._targets(body.connection_id)
        for client in targets:
            self.ws.half_open(client, body.seconds)
        return _json({"connections": [c.id for c in targets], "seconds": body.seconds})

    async def rest_failures(self, request: Request) -> Response:
        """Queue failures for the next klines calls."""
        try:
            body = await self._body(request, RestFailuresBody)
        except ValidationError as exc:
            return _json({"error": exc.errors(include_url=False)}, 400)
        if body.api == "spot":
            if self.spot is None:
                return _json({"error": "the spot trading API is not running"}, 400)
            self.spot.limits.faults.extend([(body.status, body.retry_after)] * body.count)
            return _json({"pending": len(self.spot.limits.faults)})
        if body.api == "alpaca":
            if self.alpaca is None:
                return _json({"error": "the Alpaca API is not running"}, 400)
            self.alpaca.rest_faults.extend([(body.status, body.retry_after)] * body.count)
            return _json({"pending": len(self.alpaca.rest_faults)})
        self.hub.rest_faults.extend([(body.status, body.retry_after)] * body.count)
        return _json({"pending": len(self.hub.rest_faults)})

    async def reset_limits(self, request: Request) -> Response:
        """Forget connection attempts, pauses and queued REST failures."""
        self.hub.attempts.clear()
        self.hub.paused.clear()
        self.hub.pause_all_until = 0.0
        self.hub.rest_faults.clear()
        if self.alpaca is not None:
            self.alpaca.rate.reset()
            self.alpaca.rest_faults.clear()
        if self.spot is not None:
            self.spot.limits.reset()
            self.spot.reply_faults.clear()
        return _json({"ok": True})
