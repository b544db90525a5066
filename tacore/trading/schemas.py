"""The orders and portfolio methods' params and replies, as pydantic models the worker and the sidecar share.

``execute.order`` takes the design document's payload unchanged (``{"symbol": "AAPL", "action": "buy",
"quantity": 100, "order_type": "market"}``) and Alpaca's names as aliases (``side``, ``qty``, ``type``,
``limit_price``). Quantities and prices may be JSON numbers or strings (strings are exact); replies
carry them as strings, as Alpaca's order object does.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from tacore.trading.intents import CLIENT_ORDER_ID_RE
from tacore.trading.model import OrderType, Side, TimeInForce
from tacore.trading.model.money import MAX_VALUE, places, to_decimal

SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,20}([.][A-Z]{1,2})?$")
ACCOUNT_RE = r"^[A-Za-z0-9_-]{1,64}$"
MAX_PLACES = 10


def _symbol(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("symbol must be a string")
    symbol = value.strip().upper()
    if not SYMBOL_RE.match(symbol):
        raise ValueError(f"invalid symbol {value!r}: letters and digits, e.g. BTCUSDT or AAPL")
    return symbol


def _amount(value: Any) -> Decimal | None:
    if value is None:
        return None
    number = to_decimal(value)
    if number <= 0:
        raise ValueError("must be greater than 0")
    if number > MAX_VALUE:
        raise ValueError("must be at most 1e15")
    if places(number) > MAX_PLACES:
        raise ValueError(f"at most {MAX_PLACES} decimal places")
    return number


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ExecuteOrderParams(_Params):
    symbol: str
    action: Side = Field(validation_alias=AliasChoices("action", "side"))
    quantity: Decimal = Field(validation_alias=AliasChoices("quantity", "qty"))
    order_type: OrderType = Field(default=OrderType.MARKET, validation_alias=AliasChoices("order_type", "type"))
    #: the limit price (limit and stop_limit orders)
    price: Decimal | None = Field(default=None, validation_alias=AliasChoices("price", "limit_price"))
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    #: unique per account; default: derived from the request_id (the same request_id, the same order)
    client_order_id: str | None = None
    account: str | None = Field(default=None, pattern=ACCOUNT_RE)
    venue: str | None = None

    _symbol = field_validator("symbol", mode="before")(_symbol)
    _lower = field_validator("action", "order_type", "time_in_force", mode="before")(_lower)

    @field_validator("quantity", "price", "stop_price", mode="before")
    @classmethod
    def _amounts(cls, value: Any) -> Decimal | None:
        return _amount(value)

    @field_validator("client_order_id")
    @classmethod
    def _client_order_id(cls, value: str | None) -> str | None:
        if value is not None and not CLIENT_ORDER_ID_RE.match(value):
            raise ValueError("1 to 36 characters: letters, digits and . _ : / -")
        return value

    @model_validator(mode="after")
    def _prices_fit_the_type(self) -> ExecuteOrderParams:
        kind = self.order_type
        problems = []
        if kind.has_limit and self.price is None:
            problems.append(("price", f"a {kind} order needs a limit price"))
        if not kind.has_limit and self.price is not None:
            problems.append(("price", f"a {kind} order takes no limit price"))
        if kind.has_stop and self.stop_price is None:
            problems.append(("stop_price", f"a {kind} order needs a stop price"))
        if not kind.has_stop and self.stop_price is not None:
            problems.append(("stop_price", f"a {kind} order takes no stop price"))
        if self.time_in_force in (TimeInForce.IOC, TimeInForce.FOK) and kind.has_stop:
            problems.append(("time_in_force", f"{self.time_in_force} is for market and limit orders"))
        if self.price is not None and self.quantity * self.price > MAX_VALUE:
            problems.append(("quantity", "quantity x price must be at most 1e15"))
        if problems:
            raise ValueError("; ".join(f"{field}: {message}" for field, message in problems))
        return self


class OrderRef(_Params):
    """One order, by TACore's id or by its client order id (within ``account``, default the default one)."""

    order_id: str | None = Field(default=None, validation_alias=AliasChoices("order_id", "id"), max_length=64)
    client_order_id: str | None = Field(default=None, max_length=64)
    account: str | None = Field(default=None, pattern=ACCOUNT_RE)

    @model_validator(mode="after")
    def _one_ref(self) -> OrderRef:
        if (self.order_id is None) == (self.client_order_id is None):
            raise ValueError("give exactly one of order_id and client_order_id")
        return self


class OrderGetParams(OrderRef):
    include_fills: bool = False


class OrderCancelParams(OrderRef):
    pass


def _epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds from an integer or an ISO 8601 time (Alpaca's ``after``/``until``)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("an epoch time in ms or an ISO 8601 time") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    raise ValueError("an epoch time in ms or an ISO 8601 time")


class OrderListParams(_Params):
    account: str | None = Field(default=None, pattern=ACCOUNT_RE)
    #: open, closed, all (Alpaca's), or one status (e.g. "filled")
    status: Literal["open", "closed", "all", "accepted", "new", "partially_filled", "filled", "canceled",
                    "expired", "rejected", "pending_cancel"] = "open"
    symbols: list[str] = Field(default_factory=list, max_length=100)
    after: int | None = None  # created at or after (epoch ms or ISO 8601)
    until: int | None = None  # created before
    direction: Literal["asc", "desc"] = "desc"
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=200)  # the previous page's next_cursor
    include_fills: bool = False

    _times = field_validator("after", "until", mode="before")(_epoch_ms)

    @field_validator("symbols", mode="before")
    @classmethod
    def _symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [s for s in value.split(",") if s.strip()]
        if isinstance(value, list):
            return list(dict.fromkeys(_symbol(v) for v in value))
        return value


class FillListParams(_Params):
    """``fill.list``: the newest fills across all orders (of one account), newest first."""

    account: str | None = Field(default=None, pattern=ACCOUNT_RE)
    limit: int = Field(default=50, ge=1, le=500)


class PositionsParams(_Params):
    account: str | None = Field(default=None, pattern=ACCOUNT_RE)
    symbol: str | None = None
    #: positions back to zero (with their realised P&L) too
    include_closed: bool = False

    _symbol = field_validator("symbol", mode="before")(lambda v: None if v is None else _symbol(v))


class BalancesParams(_Params):
    account: str | None = Field(default=None, pattern=ACCOUNT_RE)


# -- replies -----------------------------------------------------------------------------------------------
class FillView(BaseModel):
    id: str
    order_id: str
    venue_fill_id: str
    symbol: str
    side: Side
    qty: str
    price: str
    fee: str
    fee_asset: str
    liquidity: Literal["maker", "taker"]
    filled_at: str


class RecentFillView(FillView):
    """A fill in ``fill.list``: with its account and its order's type."""

    account: str
    order_type: OrderType | None  # None only if its order could not be read


class FillListView(BaseModel):
    fills: list[RecentFillView]
    count: int


class OrderView(BaseModel):
    """An order as Alpaca's order object names its fields, plus TACore's (account, venue, fees, reason)."""

    id: str
    client_order_id: str
    created_at: str
    updated_at: str
    submitted_at: str | None
    filled_at: str | None
    expired_at: str | None
    canceled_at: str | None
    failed_at: str | None
    expires_at: str | None  # a day order's session end
    asset_class: str
    symbol: str
    qty: str
    filled_qty: str
    filled_avg_price: str | None
    order_class: Literal["simple"]
    order_type: OrderType
    type: OrderType
    side: Side
    time_in_force: TimeInForce
    limit_price: str | None
    stop_price: str | None
    status: str
    extended_hours: bool
    account: str
    venue: str
    venue_order_id: str | None
    fees: str
    fee_asset: str
    reason: str | None
    request_id: str | None
    fills: list[FillView] | None = None


class OrderListView(BaseModel):
    orders: list[OrderView]
    count: int
    next_cursor: str | None


class PositionView(BaseModel):
    """A position as Alpaca names its fields, marked to the latest price, plus realised P&L and fees."""

    account: str
    symbol: str
    asset_class: str
    quote_asset: str
    side: Literal["long", "short", "flat"]
    qty: str
    qty_available: str
    avg_entry_price: str | None
    cost_basis: str
    current_price: str | None
    price_time: str | None
    market_value: str | None
    unrealized_pl: str | None
    unrealized_plpc: str | None
    realized_pl: str
    fees: str


class PositionsView(BaseModel):
    positions: list[PositionView]
    count: int


class BalanceView(BaseModel):
    account: str
    asset: str
    total: str
    reserved: str  # held by open orders
    available: str
    deposited: str


class BalancesView(BaseModel):
    balances: list[BalanceView]
    #: per account and quote asset: cash plus the market value of the positions quoted in it
    equity: dict[str, dict[str, str]]
    count: int
