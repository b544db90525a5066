"""Control routes for the spot trading side (JSON, on the REST port, beside the other ``/_sim/`` routes):
accounts and balances per API key, lost or delayed order replies, the exchange's clock skew, and the
ground truth a test compares with (every order an account placed, its trades and balances).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tacore.exchange_sim.spot.accounts import KEY_RE, SpotAccount
from tacore.exchange_sim.spot.hub import SpotHub
from tacore.exchange_sim.spot.symbols import fmt8


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountBody(_Body):
    """``POST /_sim/spot/account``: create (or replace) the account of an API key."""

    api_key: str = Field(pattern=KEY_RE.pattern)
    secret_key: str = Field(pattern=KEY_RE.pattern)
    balances: dict[str, str] = Field(default_factory=dict)
    can_trade: bool = True
    commission: str = "0.001"

    @field_validator("balances")
    @classmethod
    def _amounts(cls, value: dict[str, str]) -> dict[str, str]:
        for asset, amount in value.items():
            try:
                if Decimal(amount) < 0:
                    raise ValueError
            except (InvalidOperation, ValueError):
                raise ValueError(f"{asset}: {amount!r} is not an amount >= 0") from None
        return value


class ReplyFaultBody(_Body):
    """``POST /_sim/spot/reply_faults``: what happens to the answers of the next order requests (POST or
    DELETE /api/v3/order). The request is carried out either way; ``delay`` holds its answer ``seconds``
    (a client that times out meanwhile lost it), ``unknown`` answers HTTP 503 -1007."""

    count: int = Field(1, ge=0, le=1000)
    mode: Literal["delay", "unknown"] = "delay"
    seconds: float = Field(5.0, ge=0, le=600)


class ClockBody(_Body):
    """``POST /_sim/clock``: set the exchange clock's skew (ms added to the simulated time)."""

    skew_ms: int = Field(ge=-86_400_000, le=86_400_000)
    #: ``GET /api/v3/time`` answers the time without the skew (a resync then cannot fix it)
    hide_from_time: bool = False


BodyT = TypeVar("BodyT", bound=_Body)


def _json(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


class SpotControlApi:
    def __init__(self, spot: SpotHub) -> None:
        self.spot = spot

    def routes(self) -> list[Route]:
        return [
            Route("/_sim/spot/account", self.put_account, methods=["POST"]),
            Route("/_sim/spot/account", self.get_account, methods=["GET"]),
            Route("/_sim/spot/reply_faults", self.reply_faults, methods=["POST"]),
            Route("/_sim/clock", self.clock, methods=["POST"]),
        ]

    async def _body(self, request: Request, model: type[BodyT]) -> BodyT | Response:
        try:
            return model.model_validate_json((await request.body()) or b"{}")
        except ValidationError as exc:
            return _json({"error": exc.errors(include_url=False, include_context=False)}, 400)

    async def put_account(self, request: Request) -> Response:
        body = await self._body(request, AccountBody)
        if isinstance(body, Response):
            return body
        rate = Decimal(body.commission)
        account = SpotAccount(body.api_key, body.secret_key, can_trade=body.can_trade, maker_rate=rate,
                              taker_rate=rate)
        for asset, amount in body.balances.items():
            account.deposit(asset.upper(), Decimal(amount))
        self.spot.accounts.put(account)
        return _json({"api_key": account.api_key, "uid": account.uid})

    async def get_account(self, request: Request) -> Response:
        """Ground truth of one account: balances, every order it placed (newest last) and its trades."""
        key = request.query_params.get("api_key", self.spot.hub.config.spot_api_key)
        account = self.spot.accounts.get(key)
        if account is None:
            return _json({"error": "no account has that API key"}, 404)
        self.spot.engine.advance()
        orders = self.spot.engine.orders_of(account)
        holdings = sorted(account.holdings.items())
        return _json({
            "balances": {a: {"free": fmt8(h.free), "locked": fmt8(h.locked)} for a, h in holdings},
            "orders": [o.query() for o in orders],
            "trades": [t.record() for o in orders for t in o.trades],
        })

    async def reply_faults(self, request: Request) -> Response:
        body = await self._body(request, ReplyFaultBody)
        if isinstance(body, Response):
            return body
        self.spot.reply_faults.extend([(body.mode, body.seconds)] * body.count)
        return _json({"pending": len(self.spot.reply_faults)})

    async def clock(self, request: Request) -> Response:
        body = await self._body(request, ClockBody)
        if isinstance(body, Response):
            return body
        clock = self.spot.hub.clock
        clock.skew_ms = body.skew_ms
        self.spot.hub.time_hides_skew = body.hide_from_time
        return _json({"skew_ms": clock.skew_ms, "sim_time_ms": clock.now_ms()})
