"""Orders and the portfolio over HTTP: ``/orders``, ``/orders/{id}``, ``/positions``, ``/balances``.

Each route is one broker call to the order process (``order.list``, ``order.get``, ``execute.order``,
``order.cancel``, ``portfolio.positions``, ``account.balances``), so HTTP users get exactly what ZeroMQ
clients get, the order process checks everything again, and every call lands in the request log.
Reads take the API key from the header or the dashboard's cookie; ``POST`` and ``DELETE`` the header
only (a cookie rides along with any request a browser makes). ``POST /orders`` takes an
``Idempotency-Key`` header: it is the call's ``request_id``, so a retry with the same key answers the
same order (docs/orders.md, *Exactly once*).

The order process's answers map to HTTP as: ``INVALID_PARAMS`` 422 (404 for an order that does not
exist), ``CONFLICT`` 409, ``FORBIDDEN`` 403 (the sidecar's ``CLIENT_KEY`` lacks the ``trade`` role),
a process that is down or busy 503, anything else 502; an order or account that a read or a cancel
names but does not exist is 404.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from clients import RemoteError
from tacore.api.broker_link import BrokerLink, Sampler
from tacore.api.deps import LinkDep, SamplerDep
from tacore.api.errors import ComponentUnavailable
from tacore.api.schemas import Problem
from tacore.api.security import require_key, require_key_for_write
from tacore.trading.model import OrderType, Side, TimeInForce
from tacore.trading.schemas import BalancesView, ExecuteOrderParams, OrderListView, OrderView, PositionsView

Responses = dict[int | str, dict[str, Any]]

_KEY: Responses = {401: {
    "model": Problem, "description": "the X-API-Key header (or, for reads, the dashboard's cookie) is missing or "
                                     "wrong"}}
_DOWN: Responses = {
    503: {"model": Problem, "description": "the broker or the order process is down, busy or did not answer in "
                                           "time (`Retry-After`)"},
    502: {"model": Problem, "description": "the order process failed on the call (INTERNAL)"}}
_INVALID: Responses = {422: {
    "description": "a value breaks a rule below (FastAPI's `detail` list naming each field), or the order process "
                   "refused it (`INVALID_PARAMS`: e.g. an unknown account)"}}
_FORBIDDEN: Responses = {403: {
    "model": Problem, "description": "the sidecar's CLIENT_KEY lacks the broker role the method needs (`trade` to "
                                     "place or cancel)"}}
_NOT_FOUND: Responses = {404: {"model": Problem, "description": "no order with that id (in that account), or no "
                                                                 "such account"}}

read_router = APIRouter(tags=["orders"], dependencies=[Depends(require_key)],
                        responses={**_KEY, **_DOWN, **_INVALID, **_FORBIDDEN, **_NOT_FOUND})
write_router = APIRouter(tags=["orders"], dependencies=[Depends(require_key_for_write)],
                         responses={**_KEY, **_DOWN, **_INVALID, **_FORBIDDEN,
                                    400: {"model": Problem, "description": "the body is not JSON"}})

#: A symbol as the order process takes it (upper-cased): 1-20 letters or digits, a share class after a dot.
_SYM = r"[A-Za-z0-9]{1,20}([.][A-Za-z]{1,2})?"
_ACCOUNT = r"^[A-Za-z0-9_-]{1,64}$"
_ORDER_ID = r"^[A-Za-z0-9._:-]{1,64}$"
#: Decimal amounts as exact strings (or JSON numbers): > 0, at most 1e15, at most 10 decimal places.
_AMOUNT = r"^[0-9]{1,16}([.][0-9]{1,10})?$"
_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_TIMEOUT_MS = 10_000
_UNAVAILABLE = {"UNKNOWN_METHOD", "UNAVAILABLE", "TIMEOUT", "BUSY", "WORKER_LOST", "IN_PROGRESS", "CANCELLED"}

Account = Annotated[str | None, Query(pattern=_ACCOUNT, description="the account (default: the default one)")]
OrderId = Annotated[str, Path(pattern=_ORDER_ID, description="TACore's order id (`id` in the reply)")]


class OrderBody(BaseModel):
    """``execute.order``'s params, the design document's names (``side``/``qty``/``type`` are not taken here)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "symbol": "AAPL", "action": "buy", "quantity": 100, "order_type": "market"}})
    symbol: str = Field(pattern=f"^{_SYM}$", description="e.g. BTCUSDT or AAPL (upper-cased)")
    action: Side = Field(description="buy or sell")
    quantity: float | str = Field(
        description="> 0, at most 1e15 and 10 decimal places; a string is exact (a number is read as written)",
        json_schema_extra={"anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": 1e15},
                                     {"type": "string", "pattern": _AMOUNT}]})
    order_type: OrderType = Field(default=OrderType.MARKET, description="market, limit, stop or stop_limit")
    price: float | str | None = Field(
        default=None, description="the limit price: required for limit and stop_limit, refused otherwise; "
                                  "quantity x price at most 1e15",
        json_schema_extra={"anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": 1e15},
                                     {"type": "string", "pattern": _AMOUNT}, {"type": "null"}]})
    stop_price: float | str | None = Field(
        default=None, description="required for stop and stop_limit, refused otherwise",
        json_schema_extra={"anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": 1e15},
                                     {"type": "string", "pattern": _AMOUNT}, {"type": "null"}]})
    time_in_force: TimeInForce = Field(default=TimeInForce.DAY,
                                       description="day, gtc, ioc or fok (ioc/fok for market and limit orders)")
    client_order_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9._:/-]{1,36}$",
        description="unique per account: the same id and payload answers the same order, another payload is 409; "
                    "default: derived from the call's request_id (the Idempotency-Key)")
    account: str | None = Field(default=None, pattern=_ACCOUNT)
    venue: str | None = Field(default=None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$",
                              description="the account's venue (checked against it)")


# -- the call -------------------------------------------------------------------------------------------
def _require_orders(sampler: Sampler) -> None:
    status = sampler.require_status()
    serving = int(status.get("methods", {}).get("execute.order", {}).get("workers", 0))
    if serving <= 0:
        raise ComponentUnavailable("orders", "the order process is not running: no worker serves execute.order "
                                             "(it starts with `tacore serve`)")


async def call_orders(link: BrokerLink, sampler: Sampler, method: str, params: dict[str, Any],
                      request_id: str | None = None) -> dict[str, Any]:
    """One call to the order process; its error codes become HTTP statuses (see the module's text)."""
    _require_orders(sampler)
    try:
        data = await link.call(method, params, timeout_ms=_TIMEOUT_MS, priority=2, request_id=request_id)
    except RemoteError as exc:
        raise _http_error(method, exc) from None
    if not isinstance(data, dict):
        raise ComponentUnavailable("orders", f"{method} answered {type(data).__name__}, not an object",
                                   status_code=502)
    return data


def _http_error(method: str, exc: RemoteError) -> Exception:
    details = exc.details if isinstance(exc.details, list) else []
    if exc.code == "INVALID_PARAMS":
        # what a read or a cancel names does not exist (an order, an account): 404; a new order's body: 422
        missing = [d for d in details if isinstance(d, dict) and (d.get("message") == "no such order" or (
            d.get("field") == "account" and method != "execute.order"))]
        if missing:
            return ComponentUnavailable("orders", exc.message, status_code=404)
        fields = details or [{"message": exc.message}]
        return RequestValidationError([
            {"type": "value_error", "loc": ("body", str(d.get("field") or "")) if isinstance(d, dict) else ("body",),
             "msg": str(d.get("message") if isinstance(d, dict) else d), "input": None}
            for d in fields])
    if exc.code == "CONFLICT":
        return ComponentUnavailable("orders", exc.message, status_code=409)
    if exc.code == "FORBIDDEN":
        return ComponentUnavailable("orders", f"the sidecar's CLIENT_KEY may not call {method}: {exc.message}",
                                    status_code=403)
    if exc.code in _UNAVAILABLE:
        return ComponentUnavailable("orders", f"the order process could not answer {method}: "
                                              f"{exc.code}: {exc.message}")
    return ComponentUnavailable("orders", f"the order process failed on {method}: {exc.code}: {exc.message}",
                                status_code=502)


def _epoch_ms(value: int | datetime | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


_TIME_SCHEMA = {"anyOf": [{"type": "integer", "minimum": 0, "maximum": _MAX_MS},
                          {"type": "string", "format": "date-time"}, {"type": "null"}]}


def _ms_or_iso(value: Any) -> Any:
    """Digits are epoch milliseconds (0 to the year 9999); any other number is refused (pydantic would read it
    as epoch seconds); anything else goes to pydantic's ISO 8601 parsing."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        text = str(value).strip()
        if not text.isdigit() or int(text) > _MAX_MS:
            raise ValueError(f"epoch milliseconds must be an integer from 0 to {_MAX_MS}")
        return int(text)
    return value


_NUMBER = re.compile(r"[+-]?(\d+([.]\d*)?|[.]\d+)([eE][+-]?\d+)?")
Time = Annotated[Annotated[int, Field(ge=0, le=_MAX_MS)] | datetime | None, BeforeValidator(_ms_or_iso)]


# -- routes ---------------------------------------------------------------------------------------------
@read_router.get("/orders", response_model=OrderListView, summary="Orders, newest first, in pages (order.list)")
async def list_orders(
    link: LinkDep, sampler: SamplerDep, account: Account = None,
    status: Annotated[Literal["open", "closed", "all", "accepted", "new", "partially_filled", "filled", "canceled",
                              "expired", "rejected", "pending_cancel"],
                      Query(description="open, closed, all, or one status")] = "open",
    symbols: Annotated[str | None, Query(pattern=f"^{_SYM}(,{_SYM}){{0,99}}$",
                                         description="comma-separated, e.g. BTCUSDT,AAPL")] = None,
    after: Annotated[Time, Query(description="created at or after: epoch ms or ISO 8601 (no zone: UTC)",
                                 json_schema_extra=_TIME_SCHEMA)] = None,
    until: Annotated[Time, Query(description="created before: epoch ms or ISO 8601 (no zone: UTC)",
                                 json_schema_extra=_TIME_SCHEMA)] = None,
    direction: Annotated[Literal["asc", "desc"], Query()] = "desc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$",
                                        description="the previous page's `next_cursor`")] = None,
    include_fills: bool = False,
) -> dict[str, Any]:
    params: dict[str, Any] = {"status": status, "direction": direction, "limit": limit,
                              "include_fills": include_fills}
    optional = {"account": account, "symbols": symbols, "after": _epoch_ms(after), "until": _epoch_ms(until),
                "cursor": cursor}
    params.update({k: v for k, v in optional.items() if v is not None})
    return await call_orders(link, sampler, "order.list", params)


@read_router.get("/orders/{order_id}", response_model=OrderView, responses=_NOT_FOUND,
                 summary="One order, with its fills when asked (order.get)")
async def get_order(link: LinkDep, sampler: SamplerDep, order_id: OrderId, account: Account = None,
                    include_fills: bool = False) -> dict[str, Any]:
    params: dict[str, Any] = {"order_id": order_id, "include_fills": include_fills}
    if account is not None:
        params["account"] = account
    return await call_orders(link, sampler, "order.get", params)


@write_router.post("/orders", response_model=OrderView, responses={409: {
    "model": Problem, "description": "the Idempotency-Key or client_order_id already names another order"}},
    summary="Place an order (execute.order); a refused order is an order with status rejected and its reason")
async def place_order(
    body: OrderBody, link: LinkDep, sampler: SamplerDep,
    idempotency_key: Annotated[str | None, Header(
        alias="Idempotency-Key", min_length=8, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$",
        description="the call's request_id: a retry with the same key answers the same order")] = None,
) -> dict[str, Any]:
    params = body.model_dump(exclude_none=True, exclude_unset=True, mode="json")  # as sent: the log shows it
    try:  # the order process's own rules (prices for the type, amounts, ...): a 422 here, without a round trip
        ExecuteOrderParams.model_validate(params)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]) \
            from None
    return await call_orders(link, sampler, "execute.order", params, request_id=idempotency_key)


@write_router.delete("/orders/{order_id}", response_model=OrderView, responses=_NOT_FOUND,
                     summary="Cancel an open order (order.cancel); the reply is the order as it ended")
async def cancel_order(link: LinkDep, sampler: SamplerDep, order_id: OrderId,
                       account: Account = None) -> dict[str, Any]:
    params: dict[str, Any] = {"order_id": order_id}
    if account is not None:
        params["account"] = account
    return await call_orders(link, sampler, "order.cancel", params)


@read_router.get("/positions", response_model=PositionsView,
                 summary="Positions marked to the latest price, realised and unrealised P&L (portfolio.positions)")
async def positions(link: LinkDep, sampler: SamplerDep, account: Account = None,
                    symbol: Annotated[str | None, Query(pattern=f"^{_SYM}$")] = None,
                    include_closed: Annotated[bool, Query(description="positions back to zero too")] = False,
                    ) -> dict[str, Any]:
    params: dict[str, Any] = {"include_closed": include_closed}
    if account is not None:
        params["account"] = account
    if symbol is not None:
        params["symbol"] = symbol
    return await call_orders(link, sampler, "portfolio.positions", params)


@read_router.get("/balances", response_model=BalancesView,
                 summary="Cash per asset (total, reserved, available) and equity (account.balances)")
async def balances(link: LinkDep, sampler: SamplerDep, account: Account = None) -> dict[str, Any]:
    return await call_orders(link, sampler, "account.balances", {} if account is None else {"account": account})
