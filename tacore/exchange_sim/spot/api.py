"""Binance's spot trading REST API on the simulator's REST port, in the exchange's exact formats:

``GET /api/v3/exchangeInfo``, and the SIGNED ``POST/GET/DELETE /api/v3/order``, ``GET /api/v3/openOrders``,
``GET /api/v3/account`` and ``GET /api/v3/myTrades``. Each request is weighed (Binance's weights) and
may be refused by the limits (``limits.py``); signed ones are verified (``auth.py``); the engine is
brought up to the simulated clock before it answers. Errors are ``{"code", "msg"}`` with Binance's
HTTP statuses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tacore.exchange_sim.payloads import rest_error
from tacore.exchange_sim.rest import BinanceError
from tacore.exchange_sim.spot.auth import Signed, verify
from tacore.exchange_sim.spot.hub import SpotHub
from tacore.exchange_sim.spot.limits import Refusal
from tacore.exchange_sim.spot.matching import generated_client_id
from tacore.exchange_sim.spot.orders import SimOrder
from tacore.exchange_sim.spot.params import (
    check_filters,
    client_id_param,
    int_param,
    mandatory,
    new_order,
)
from tacore.exchange_sim.spot.symbols import fmt8, rate_limits

_ZERO = Decimal(0)
_JSON = "application/json;charset=UTF-8"
_TRADES_DEFAULT, _TRADES_MAX = 500, 1000

Handler = Callable[[Request], Awaitable[Response]]


def _json(data: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=_JSON, headers=headers)


def _error(exc: BinanceError, headers: dict[str, str] | None = None) -> Response:
    return Response(rest_error(exc.code, exc.msg), status_code=exc.status, media_type=_JSON, headers=headers)


def _refused(refusal: Refusal, headers: dict[str, str]) -> Response:
    if refusal.retry_after is not None:
        headers = {**headers, "Retry-After": str(refusal.retry_after)}
    return Response(rest_error(refusal.code, refusal.msg), status_code=refusal.status, media_type=_JSON,
                    headers=headers)


class SpotApi:
    def __init__(self, spot: SpotHub) -> None:
        self.spot = spot

    def routes(self) -> list[Route]:
        return [
            Route("/api/v3/exchangeInfo", self._weighed(self.exchange_info, 20), methods=["GET"]),
            Route("/api/v3/order", self._weighed(self.new_order, 1), methods=["POST"]),
            Route("/api/v3/order", self._weighed(self.query_order, 4), methods=["GET"]),
            Route("/api/v3/order", self._weighed(self.cancel_order, 1), methods=["DELETE"]),
            Route("/api/v3/openOrders", self._weighed(self.open_orders, self._open_orders_weight), methods=["GET"]),
            Route("/api/v3/account", self._weighed(self.account, 20), methods=["GET"]),
            Route("/api/v3/myTrades", self._weighed(self.my_trades, self._trades_weight), methods=["GET"]),
        ]

    @staticmethod
    def _open_orders_weight(request: Request) -> int:
        return 6 if request.query_params.get("symbol") else 80

    @staticmethod
    def _trades_weight(request: Request) -> int:
        return 5 if request.query_params.get("orderId") else 20

    def _weighed(self, handler: Handler, weight: int | Callable[[Request], int]) -> Handler:
        """Count the request against the limits; answer a refusal or a BinanceError in Binance's shape."""

        async def route(request: Request) -> Response:
            spot = self.spot
            spot.counters["requests"] += 1
            refusal = spot.limits.admit(weight(request) if callable(weight) else weight)
            if refusal is not None:
                spot.counters["errors"] += 1
                return _refused(refusal, spot.limits.headers())
            try:
                response = await handler(request)
            except BinanceError as exc:
                spot.counters["errors"] += 1
                return _error(exc, spot.limits.headers())
            response.headers.update(spot.limits.headers())
            return response

        return route

    async def _signed(self, request: Request, *, trade: bool) -> Signed:
        body = (await request.body()).decode("utf-8", "replace") if request.method != "GET" else ""
        signed = verify(self.spot.accounts, request.headers.get("X-MBX-APIKEY"), request.url.query, body,
                        self.spot.hub.clock.now_ms(), trade=trade)
        self.spot.engine.advance()
        return signed

    # -- public ----------------------------------------------------------------------------------------
    async def exchange_info(self, request: Request) -> Response:
        q = request.query_params
        symbol, symbols = q.get("symbol"), q.get("symbols")
        if symbol and symbols:
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
        if symbol:
            names = [symbol]
        elif symbols:
            try:
                parsed = orjson.loads(symbols)
            except orjson.JSONDecodeError:
                raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'.") from None
            if not isinstance(parsed, list) or not all(isinstance(s, str) for s in parsed):
                raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'.")
            if len(set(parsed)) != len(parsed):
                raise BinanceError(-1151, "Symbol is present multiple times in the list.")
            names = parsed
        else:
            names = self.spot.listed()
        rules = [self.spot.rules(name) for name in names]
        if (symbol or symbols) and any(r is None for r in rules):
            raise BinanceError(-1121, "Invalid symbol.")
        cfg = self.spot.hub.config
        return _json({
            "timezone": "UTC",
            "serverTime": self.spot.hub.clock.now_ms(),
            "rateLimits": rate_limits(cfg.spot_weight_limit, cfg.spot_orders_per_10s, cfg.spot_orders_per_day),
            "exchangeFilters": [],
            "symbols": [r.info() for r in rules if r is not None],
        })

    # -- trading -------------------------------------------------------------------------------------------
    async def new_order(self, request: Request) -> Response:
        spot = self.spot
        signed = await self._signed(request, trade=True)
        rules = spot.rules(signed.params.get("symbol", ""))
        req, response_type = new_order(signed.params, rules)
        if rules is None:  # new_order raised -1121 already; this keeps the type checker informed
            raise BinanceError(-1121, "Invalid symbol.")
        check_filters(req, rules, spot.engine.price(req.symbol))
        key = signed.account.api_key
        refusal = spot.order_counts.take(key)
        if refusal is not None:
            return _refused(refusal, spot.order_counts.headers(key))
        order, fills = spot.engine.place(signed.account, req, rules)
        body = order.ack() if response_type == "ACK" else order.result() if response_type == "RESULT" \
            else order.full(fills)
        return await self._answer_order(body, spot.order_counts.headers(key))

    async def _answer_order(self, body: dict[str, Any], headers: dict[str, str]) -> Response:
        """The answer of a request that changed an order, unless a queued fault loses or delays it."""
        spot = self.spot
        if spot.reply_faults:
            mode, seconds = spot.reply_faults.popleft()
            if mode == "unknown":
                spot.counters["replies_lost"] += 1
                return Response(rest_error(-1007, "Timeout waiting for response from backend server. Send status "
                                                  "unknown; execution status unknown."),
                                status_code=503, media_type=_JSON, headers=headers)
            spot.counters["replies_delayed"] += 1
            await asyncio.sleep(seconds)
        return _json(body, headers=headers)

    def _find(self, signed: Signed, *, for_cancel: bool) -> SimOrder:
        params = signed.params
        symbol = mandatory(params, "symbol")
        if self.spot.rules(symbol) is None:
            raise BinanceError(-1121, "Invalid symbol.")
        order_id = int_param(params, "orderId")
        client_id = client_id_param(params, "origClientOrderId")
        if order_id is None and client_id is None:
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        found = self.spot.engine.find(signed.account, symbol, order_id, client_id)
        if found is None or (for_cancel and not found.is_open):
            if for_cancel:
                raise BinanceError(-2011, "Unknown order sent.")
            raise BinanceError(-2013, "Order does not exist.")
        return found

    async def query_order(self, request: Request) -> Response:
        signed = await self._signed(request, trade=False)
        return _json(self._find(signed, for_cancel=False).query())

    async def cancel_order(self, request: Request) -> Response:
        signed = await self._signed(request, trade=True)
        restriction = signed.params.get("cancelRestrictions")
        if restriction is not None and restriction not in ("ONLY_NEW", "ONLY_PARTIALLY_FILLED"):
            raise BinanceError(-1145, "Invalid cancelRestrictions")
        cancel_id = client_id_param(signed.params, "newClientOrderId")
        order = self._find(signed, for_cancel=True)
        if restriction is not None and order.status != restriction.removeprefix("ONLY_"):
            raise BinanceError(-2011, "Order was not canceled due to cancel restrictions.")
        self.spot.engine.cancel(order)
        body = order.canceled(cancel_id or generated_client_id(), self.spot.hub.clock.now_ms())
        return await self._answer_order(body, {})

    async def open_orders(self, request: Request) -> Response:
        signed = await self._signed(request, trade=False)
        symbol = signed.params.get("symbol") or None
        if symbol is not None and self.spot.rules(symbol) is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return _json([o.query() for o in self.spot.engine.open_orders(signed.account, symbol)])

    async def account(self, request: Request) -> Response:
        signed = await self._signed(request, trade=False)
        account = signed.account
        omit_zero = signed.params.get("omitZeroBalances", "false").lower() == "true"
        balances = [{"asset": asset, "free": fmt8(h.free), "locked": fmt8(h.locked)}
                    for asset, h in sorted(account.holdings.items()) if not omit_zero or h.free or h.locked]
        maker_bps, taker_bps = int(account.maker_rate * 10_000), int(account.taker_rate * 10_000)
        return _json({
            "makerCommission": maker_bps, "takerCommission": taker_bps, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": fmt8(account.maker_rate), "taker": fmt8(account.taker_rate),
                                "buyer": fmt8(_ZERO), "seller": fmt8(_ZERO)},
            "canTrade": account.can_trade, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": account.update_time,
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": account.uid,
        })

    async def my_trades(self, request: Request) -> Response:
        signed = await self._signed(request, trade=False)
        params = signed.params
        symbol = mandatory(params, "symbol")
        if self.spot.rules(symbol) is None:
            raise BinanceError(-1121, "Invalid symbol.")
        order_id = int_param(params, "orderId")
        from_id = int_param(params, "fromId")
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        limit = int_param(params, "limit")
        limit = _TRADES_DEFAULT if limit is None else limit
        if not 1 <= limit <= _TRADES_MAX:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        if start is not None and end is not None and end - start > 24 * 3_600_000:
            raise BinanceError(-1127, "More than 24 hours between startTime and endTime.")
        rows = [t for t in self.spot.engine.trades(signed.account, symbol)
                if (order_id is None or t.order_id == order_id) and (from_id is None or t.trade_id >= from_id)
                and (start is None or t.time >= start) and (end is None or t.time <= end)]
        rows = rows[:limit] if from_id is not None or start is not None else rows[-limit:]
        return _json([t.record() for t in rows])

