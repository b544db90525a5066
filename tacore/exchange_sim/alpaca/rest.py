"""Alpaca's historical bars REST API, on the simulated clock: ``/v2/stocks/bars``,
``/v2/stocks/{symbol}/bars`` and the latest minute bars.

Every request passes the key check (``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY``, else 401), then the
per-key rate window (else 429), then any fault a test queued; every answer carries the rate headers
and a ``Date`` header on the simulated clock (the server's time, which a client can read).
"""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tacore.exchange_sim.alpaca.hub import AlpacaHub
from tacore.exchange_sim.alpaca.paging import BarsPage, collect_page
from tacore.exchange_sim.alpaca.payloads import bar_dicts, rest_error
from tacore.exchange_sim.alpaca.query import AlpacaError, parse_bars_query

_JSON = "application/json; charset=UTF-8"
_UNAUTHORIZED = AlpacaError(401, 40110000, "request is not authorized")
_BAD_KEY = AlpacaError(401, 40110000, "access key verification failed : access key not found (Code = 40110000)")
_FAULTS = {429: (42910000, "rate limit exceeded"), 500: (50010000, "internal server error"),
           418: (41810000, "too many requests, banned")}


class AlpacaRestApi:
    def __init__(self, hub: AlpacaHub) -> None:
        self.hub = hub

    def routes(self) -> list[Route]:
        return [
            Route("/v2/stocks/bars", self.multi_bars, methods=["GET"]),
            Route("/v2/stocks/bars/latest", self.latest_bars, methods=["GET"]),
            Route("/v2/stocks/{symbol}/bars", self.single_bars, methods=["GET"]),
            Route("/v2/stocks/{symbol}/bars/latest", self.latest_bar, methods=["GET"]),
        ]

    # -- the gate every request passes -------------------------------------------------------------------
    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Date": formatdate(self.hub.clock.now_ms() / 1000, usegmt=True)}
        if extra:
            headers.update(extra)
        return headers

    def _error(self, exc: AlpacaError, extra: dict[str, str] | None = None) -> Response:
        return Response(rest_error(exc.code, exc.message), status_code=exc.status, media_type=_JSON,
                        headers=self._headers(extra))

    def _gate(self, request: Request) -> Response | dict[str, str]:
        """A refusal, or the rate headers of an admitted request."""
        hub = self.hub
        hub.counters["rest_requests"] += 1
        key_id, secret = request.headers.get("APCA-API-KEY-ID"), request.headers.get("APCA-API-SECRET-KEY")
        if not key_id or not secret:
            hub.counters["rest_unauthorized"] += 1
            return self._error(_UNAUTHORIZED)
        if not hub.keys.matches(key_id, secret):
            hub.counters["rest_unauthorized"] += 1
            return self._error(_BAD_KEY)
        allowed, rate = hub.rate.take()
        if not allowed:
            hub.counters["rest_rate_limited"] += 1
            return self._error(AlpacaError(429, 42910000, "rate limit exceeded"), rate)
        if hub.rest_faults:
            status, reset_in = hub.rest_faults.popleft()
            hub.counters["rest_failures_injected"] += 1
            code, message = _FAULTS.get(status, (status * 100_000, "error"))
            extra = dict(rate)
            if status in (429, 418):
                extra.update({"X-RateLimit-Remaining": "0", "Retry-After": str(reset_in),
                              "X-RateLimit-Reset": str(int(time.time()) + reset_in)})
            return self._error(AlpacaError(status, code, message), extra)
        return rate

    def _json(self, body: object, rate: dict[str, str]) -> Response:
        return Response(orjson.dumps(body), media_type=_JSON, headers=self._headers(rate))

    # -- bars ----------------------------------------------------------------------------------------------
    async def _page(self, request: Request, symbols: list[str] | None) -> tuple[BarsPage, str | None] | Response:
        gate = self._gate(request)
        if isinstance(gate, Response):
            return gate
        hub = self.hub
        try:
            now = hub.clock.now_ms()
            query = parse_bars_query(request.query_params, now, sip_allowed=hub.config.alpaca_sip, symbols=symbols)
            market = await hub.market()
            page = await asyncio.to_thread(collect_page, market, query, now)
        except AlpacaError as exc:
            return self._error(exc, gate)
        request.state.rate = gate
        return page, query.currency

    async def multi_bars(self, request: Request) -> Response:
        """``GET /v2/stocks/bars``: ``{"bars": {symbol: [...]}, "next_page_token"}``."""
        result = await self._page(request, None)
        if isinstance(result, Response):
            return result
        page, currency = result
        body: dict[str, object] = {"bars": {s: bar_dicts(cols) for s, cols in page.bars.items()},
                                   "next_page_token": page.next_page_token}
        if currency is not None:
            body["currency"] = currency
        return self._json(body, request.state.rate)

    async def single_bars(self, request: Request) -> Response:
        """``GET /v2/stocks/{symbol}/bars``: ``{"bars": [...] or null, "symbol", "next_page_token"}``."""
        symbol = request.path_params["symbol"]
        result = await self._page(request, [symbol])
        if isinstance(result, Response):
            return result
        page, currency = result
        cols = page.bars.get(symbol)
        body: dict[str, object] = {"bars": bar_dicts(cols) if cols is not None else None, "symbol": symbol,
                                   "next_page_token": page.next_page_token}
        if currency is not None:
            body["currency"] = currency
        return self._json(body, request.state.rate)

    async def _latest(self, request: Request, symbols: list[str]) -> dict[str, dict[str, object]] | Response:
        feed = request.query_params.get("feed") or ("sip" if self.hub.config.alpaca_sip else "iex")
        if feed not in ("sip", "iex", "delayed_sip", "otc", "boats", "overnight"):
            return self._error(AlpacaError(400, 40010001, "invalid feed"))
        if feed == "sip" and not self.hub.config.alpaca_sip:
            return self._error(AlpacaError(403, 40310000, "subscription does not permit querying recent SIP data"))
        market = await self.hub.market()
        now = self.hub.clock.now_ms()
        if feed == "delayed_sip":
            feed, now = "sip", now - 15 * 60_000
        out: dict[str, dict[str, object]] = {}
        if feed not in ("sip", "iex"):
            return out
        for symbol in dict.fromkeys(symbols):
            if market.is_listed(symbol):
                cols = market.latest_minute(symbol, feed, now)
                if len(cols):
                    out[symbol] = bar_dicts(cols)[0]
        return out

    async def latest_bars(self, request: Request) -> Response:
        """``GET /v2/stocks/bars/latest``: the newest minute bar per listed symbol (unknown ones left out)."""
        gate = self._gate(request)
        if isinstance(gate, Response):
            return gate
        raw = request.query_params.get("symbols", "")
        symbols = [s.strip() for s in raw.split(",") if s.strip()]
        if not symbols:
            return self._error(AlpacaError(400, 40010001, "missing symbols"), gate)
        bars = await self._latest(request, symbols)
        if isinstance(bars, Response):
            return bars
        return self._json({"bars": bars}, gate)

    async def latest_bar(self, request: Request) -> Response:
        """``GET /v2/stocks/{symbol}/bars/latest``: ``{"bar", "symbol"}``; 404 for an unknown symbol."""
        gate = self._gate(request)
        if isinstance(gate, Response):
            return gate
        symbol = request.path_params["symbol"]
        bars = await self._latest(request, [symbol])
        if isinstance(bars, Response):
            return bars
        if symbol not in bars:
            return self._error(AlpacaError(404, 40410000, f"no bar found for {symbol}"), gate)
        return self._json({"bar": bars[symbol], "symbol": symbol}, gate)
