"""Ground truth and faults for tests of an Alpaca client: ``/_sim/alpaca/...`` on the control port.

``GET /_sim/alpaca/closed`` returns the closed bars of a TACore interval in the shape ``kline.history``
stores them (a 1d candle opens at UTC midnight of the session's date; ``quote_volume`` is volume x
VWAP as a client computes it from the JSON; no taker split for equities), so a test can compare a
data agent's store with what the simulated exchange closed.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tacore.exchange_sim.alpaca.bars import BarColumns
from tacore.exchange_sim.alpaca.feed import AlpacaMinuteFeed
from tacore.exchange_sim.alpaca.hub import AlpacaHub
from tacore.exchange_sim.alpaca.payloads import bar_dicts
from tacore.exchange_sim.alpaca.sessions import DAY_MS, MINUTE_MS
from tacore.exchange_sim.alpaca.stream import AlpacaStreamServer
from tacore.exchange_sim.alpaca.timeframes import FROM_INTERVAL, parse_timeframe
from tacore.intervals import INTERVAL_MS

MAX_CLOSED_ROWS = 100_000


class LateTradeBody(BaseModel):
    """``POST /_sim/alpaca/late_trade``: a trade reported after its minute's bar was sent."""

    model_config = ConfigDict(extra="forbid")
    symbol: str
    minute_ms: int = Field(ge=0)  # the minute's open time
    shares: int = Field(100, ge=1, le=10_000_000)
    price: float | None = Field(None, gt=0)  # default: the minute's close


class DisconnectBody(BaseModel):
    """``POST /_sim/alpaca/disconnect``."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["close", "abort"] = "close"
    connection_id: int | None = None


def _json(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def candle_records(symbol: str, interval: str, cols: BarColumns) -> list[dict[str, Any]]:
    """Bars as TACore candles (``kline.history``'s shape), numbers as a client parses the JSON."""
    out = []
    for t_ms, bar in zip(cols.start.tolist(), bar_dicts(cols), strict=True):
        open_time = t_ms - t_ms % DAY_MS if interval == "1d" else t_ms
        volume = float(bar["v"])
        out.append({
            "symbol": symbol, "interval": interval, "open_time": open_time,
            "close_time": open_time + INTERVAL_MS[interval] - 1, "open": float(bar["o"]), "high": float(bar["h"]),
            "low": float(bar["l"]), "close": float(bar["c"]), "volume": volume,
            "quote_volume": volume * float(bar["vw"]), "trades": bar["n"], "taker_buy_base_volume": 0.0,
            "taker_buy_quote_volume": 0.0, "closed": True,
        })
    return out


class AlpacaControlApi:
    def __init__(self, hub: AlpacaHub, server: AlpacaStreamServer, feed: AlpacaMinuteFeed) -> None:
        self.hub = hub
        self.server = server
        self.feed = feed

    def routes(self) -> list[Route]:
        return [
            Route("/_sim/alpaca/closed", self.closed, methods=["GET"]),
            Route("/_sim/alpaca/disconnect", self.disconnect, methods=["POST"]),
            Route("/_sim/alpaca/late_trade", self.late_trade, methods=["POST"]),
        ]

    async def late_trade(self, request: Request) -> Response:
        """Add a late trade to a past session minute: its bar and every aggregate holding it change, and
        stream clients on ``updatedBars`` get the corrected bar (``"T": "u"``)."""
        try:
            body = LateTradeBody.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            return _json({"error": exc.errors(include_url=False)}, 400)
        market = await self.hub.market()
        minute = body.minute_ms // MINUTE_MS
        if not market.is_listed(body.symbol) or minute * MINUTE_MS + MINUTE_MS > self.hub.clock.now_ms():
            return _json({"error": "unknown symbol, or a minute that has not closed"}, 400)
        price = None if body.price is None else round(body.price * 100)
        if not market.add_late_trade(body.symbol, minute, price, body.shares):
            return _json({"error": "the minute is outside the sessions"}, 400)
        sent = await self.feed.correct(body.symbol, minute)
        return _json({"symbol": body.symbol, "bar": bar_dicts(market.minute_bar(body.symbol, "sip", minute))[0],
                      "updates_sent": sent})

    async def closed(self, request: Request) -> Response:
        """Closed bars with open time in [start, end] of ``symbol`` and a TACore ``interval``."""
        q = request.query_params
        symbol, interval = q.get("symbol", ""), q.get("interval", "")
        feed = q.get("feed") or ("sip" if self.hub.config.alpaca_sip else "iex")
        market = await self.hub.market()
        if not market.is_listed(symbol) or interval not in FROM_INTERVAL or feed not in ("sip", "iex"):
            return _json({"error": "unknown symbol, interval or feed"}, 400)
        try:
            start = int(q["start"]) if "start" in q else self.hub.clock.start_ms
            end = int(q["end"]) if "end" in q else None
        except ValueError:
            return _json({"error": "start and end must be integers (epoch ms)"}, 400)
        now = self.hub.clock.now_ms()
        timeframe = parse_timeframe(FROM_INTERVAL[interval])
        if timeframe is None:  # FROM_INTERVAL holds Alpaca spellings only
            return _json({"error": f"no timeframe for {interval}"}, 500)
        # a 1d candle's open time (UTC midnight) is 4-5 h before the bar's stamp (New York midnight)
        stamp_start = start if timeframe.intraday else start - start % DAY_MS
        stamp_end = now if end is None else (end if timeframe.intraday else end - end % DAY_MS + DAY_MS - 1)
        cols = await asyncio.to_thread(market.bars, symbol, timeframe, feed, stamp_start, stamp_end, now,
                                       limit=MAX_CLOSED_ROWS + 1)
        tm = market.minutes
        sessions = [tm.first_session_ending_after(int(t)) for t in cols.start]
        ends = [min(int(t) + timeframe.step_ms, int(tm.close_min[s]) * MINUTE_MS) if timeframe.intraday
                else int(tm.close_min[s]) * MINUTE_MS for t, s in zip(cols.start, sessions, strict=True)]
        closed = [i for i, e in enumerate(ends) if e <= now]
        candles = candle_records(symbol, interval, cols.take(closed))
        candles = [c for c in candles if start <= c["open_time"] and (end is None or c["open_time"] <= end)]
        return _json({"symbol": symbol, "interval": interval, "feed": feed, "sim_time_ms": now,
                      "truncated": len(candles) > MAX_CLOSED_ROWS, "candles": candles[:MAX_CLOSED_ROWS]})

    async def disconnect(self, request: Request) -> Response:
        """Close (1000) or abort (TCP reset) Alpaca stream connections."""
        try:
            body = DisconnectBody.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            return _json({"error": exc.errors(include_url=False)}, 400)
        targets = [c for c in self.hub.clients.values() if body.connection_id in (None, c.id)]
        for client in targets:
            if body.mode == "close":
                self.server.close(client)
            else:
                self.server.abort(client)
        return _json({"mode": body.mode, "connections": [c.id for c in targets]})
