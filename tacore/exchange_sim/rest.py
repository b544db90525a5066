"""``GET /api/v3/klines`` as Binance serves it, on the simulated clock.

History before the simulator started is generated like the rest (candles are a function of time),
and the running candle is the last row, as on Binance. Errors use Binance's codes and HTTP 400;
injected rate-limit faults answer 429 or 418 with ``Retry-After``. Request weight is counted per clock
minute (``X-MBX-USED-WEIGHT-1M``; klines 2, time and ping 1) and a request past the minute's limit
(6,000, like Binance's ``REQUEST_WEIGHT``) is answered 429 with ``Retry-After`` until the next minute.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tacore.exchange_sim.candle import Candle
from tacore.exchange_sim.hub import Hub
from tacore.exchange_sim.intervals import BINANCE_INTERVALS, INTERVAL_MS, MINUTE_MS, open_time_of
from tacore.exchange_sim.payloads import rest_error, rest_row

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
KLINES_WEIGHT = 2
_JSON = "application/json;charset=UTF-8"
_OFFLOAD_MINUTES = 50_000  # spans longer than this are generated in a worker thread


class BinanceError(Exception):
    """An error Binance reports as ``{"code", "msg"}`` with an HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def _mandatory(value: str | None, name: str) -> str:
    if not value:
        raise BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def _int_param(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 20:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.")
    return int(value)


@dataclass(frozen=True, slots=True)
class KlineQuery:
    """What a klines request asks for, resolved against the simulated clock."""

    symbol: str
    interval: str
    first: int  # open time of the first row
    closed_count: int  # closed rows from ``first``
    with_open: bool  # whether the running candle is the last row
    now: int


def plan_klines(now: int, symbol: str, interval: str, start: int | None, end: int | None, limit: int) -> KlineQuery:
    """Resolve Binance's startTime/endTime/limit rules into a span of candles."""
    step = INTERVAL_MS[interval]
    current = open_time_of(now, interval)
    last = current if end is None else min(current, open_time_of(end, interval))
    if start is not None:
        first = open_time_of(start + step - 1, interval)  # first open time >= start
        last = min(last, first + (limit - 1) * step)
    else:
        first = last - (limit - 1) * step
    first = max(first, 0)
    if first > last:
        return KlineQuery(symbol, interval, first, 0, False, now)
    closed_last = min(last, current - step)
    count = max(0, (closed_last - first) // step + 1)
    return KlineQuery(symbol, interval, first, count, last == current, now)


async def kline_rows(hub: Hub, query: KlineQuery) -> list[Candle]:
    """The candles of a planned query; big spans are generated off the event loop."""
    market = hub.market
    minutes = query.closed_count * INTERVAL_MS[query.interval] // MINUTE_MS
    if minutes > _OFFLOAD_MINUTES:
        rows = await asyncio.to_thread(
            market.closed_range, query.symbol, query.interval, query.first, query.closed_count
        )
    else:
        rows = market.closed_range(query.symbol, query.interval, query.first, query.closed_count)
    if query.with_open:
        rows.append(market.open_candle(query.symbol, query.interval, query.now))
    return rows


class RestApi:
    """The Binance REST routes of the simulator."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._weight_minute = 0
        self._weight = 0

    def routes(self) -> list[Route]:
        """Starlette routes for the Binance paths."""
        return [
            Route("/api/v3/klines", self.klines, methods=["GET"]),
            Route("/api/v3/ping", self.ping, methods=["GET"]),
            Route("/api/v3/time", self.time, methods=["GET"]),
        ]

    def _headers(self, weight: int) -> dict[str, str]:
        minute = int(time.time() // 60)
        if minute != self._weight_minute:
            self._weight_minute, self._weight = minute, 0
        self._weight += weight
        counters = self.hub.counters
        counters["rest_weight_max_per_min"] = max(counters["rest_weight_max_per_min"], self._weight)
        return {"X-MBX-USED-WEIGHT-1M": str(self._weight)}

    def _over_budget(self, weight: int) -> Response | None:
        """Binance's 429 when this request would pass the minute's weight limit (it is not counted)."""
        now = time.time()
        minute = int(now // 60)
        used = self._weight if minute == self._weight_minute else 0
        if used + weight <= self.hub.config.rest_weight_per_min:
            return None
        self.hub.counters["rest_weight_refused"] += 1
        limit = self.hub.config.rest_weight_per_min
        msg = f"Too many requests; current limit of IP(127.0.0.1) request weight is {limit} per 1 minute."
        headers = {"Retry-After": str(max(1, int((minute + 1) * 60 - now + 0.999))), "X-MBX-USED-WEIGHT-1M": str(used)}
        return Response(rest_error(-1003, msg), status_code=429, media_type=_JSON, headers=headers)

    async def ping(self, request: Request) -> Response:
        """``GET /api/v3/ping``: ``{}``."""
        return Response(b"{}", media_type=_JSON, headers=self._headers(1))

    async def time(self, request: Request) -> Response:
        """``GET /api/v3/time``: the simulated server time."""
        refused = self._over_budget(1)
        if refused is not None:
            return refused
        clock = self.hub.clock
        body = orjson.dumps({"serverTime": clock.now_ms() - (clock.skew_ms if self.hub.time_hides_skew else 0)})
        return Response(body, media_type=_JSON, headers=self._headers(1))

    async def klines(self, request: Request) -> Response:
        """``GET /api/v3/klines``."""
        hub = self.hub
        hub.counters["rest_requests"] += 1
        refused = self._over_budget(KLINES_WEIGHT)  # Binance counts weight before it looks at the request
        if refused is not None:
            return refused
        if hub.rest_faults:
            status, retry_after = hub.rest_faults.popleft()
            hub.counters["rest_failures_injected"] += 1
            code, msg = -1003, (
                "Too many requests; current limit of IP(127.0.0.1) request weight is 6000 per 1 minute."
                if status == 429
                else "Way too many requests; IP(127.0.0.1) banned. Please use WebSocket Streams."
            )
            if status == 500:
                code, msg = -1000, "An unknown error occurred while processing the request."
            headers = {"Retry-After": str(retry_after)}
            return Response(rest_error(code, msg), status_code=status, media_type=_JSON, headers=headers)
        headers = self._headers(KLINES_WEIGHT)
        try:
            rows = await kline_rows(hub, self._klines(request))
        except BinanceError as exc:
            return Response(rest_error(exc.code, exc.msg), status_code=exc.status, media_type=_JSON, headers=headers)
        body = orjson.dumps([rest_row(c) for c in rows])
        return Response(body, media_type=_JSON, headers=headers)

    def _klines(self, request: Request) -> KlineQuery:
        q = request.query_params
        symbol = _mandatory(q.get("symbol"), "symbol")
        interval = _mandatory(q.get("interval"), "interval")
        if not self.hub.is_listed(symbol):
            raise BinanceError(-1121, "Invalid symbol.")
        if interval not in BINANCE_INTERVALS or interval not in INTERVAL_MS:
            raise BinanceError(-1120, "Invalid interval.")
        start = _int_param(q.get("startTime"), "startTime")
        end = _int_param(q.get("endTime"), "endTime")
        limit = _int_param(q.get("limit"), "limit")
        if limit is None:
            limit = DEFAULT_LIMIT
        if limit < 1:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        limit = min(limit, MAX_LIMIT)
        if start is not None and end is not None and start > end:
            raise BinanceError(-1023, "Start time is greater than end time.")
        return plan_klines(self.hub.clock.now_ms(), symbol, interval, start, end, limit)
