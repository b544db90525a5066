"""Checking the parameters of ``POST /api/v3/order`` the way Binance's API layer does, before an order
reaches the matching engine: mandatory and forbidden parameters per order type (-1102, -1106), enum
values (-1115..-1117), number formats and precision (-1100, -1111), client order ids (-1100, -1118),
then the symbol's filters (-1013 ``Filter failure: ...``).
"""

from __future__ import annotations

import re
from decimal import Decimal

from tacore.exchange_sim.rest import BinanceError
from tacore.exchange_sim.spot.matching import NewOrder, generated_client_id
from tacore.exchange_sim.spot.symbols import ORDER_TYPES, SymbolRules

_DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_INT_RE = re.compile(r"^[0-9]{1,20}$")
ALL_TYPES = frozenset({*ORDER_TYPES, "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})
_NEEDS_TIF = frozenset({"LIMIT", "STOP_LOSS_LIMIT"})
_NEEDS_PRICE = frozenset({"LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT"})
_NEEDS_STOP = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT"})
_UNSUPPORTED = {
    "TAKE_PROFIT": "Take profit orders are not supported for this symbol.",
    "TAKE_PROFIT_LIMIT": "Take profit limit orders are not supported for this symbol.",
}
RESPONSE_TYPES = frozenset({"ACK", "RESULT", "FULL"})
#: every parameter the order endpoint reads
ORDER_PARAMS = frozenset({
    "symbol", "side", "type", "timeInForce", "quantity", "quoteOrderQty", "price", "newClientOrderId",
    "strategyId", "strategyType", "stopPrice", "trailingDelta", "icebergQty", "newOrderRespType",
    "selfTradePreventionMode", "pegPriceType", "pegOffsetValue", "pegOffsetType", "recvWindow", "timestamp",
    "signature",
})


def mandatory(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def decimal_param(params: dict[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _DECIMAL_RE.match(raw):
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                                  "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")
    value = Decimal(raw)
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8:
        raise BinanceError(-1111, f"Parameter '{name}' has too much precision.")
    return value


def int_param(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _INT_RE.match(raw):
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.")
    return int(raw)


def client_id_param(params: dict[str, str], name: str) -> str | None:
    raw = params.get(name)
    if raw is None:
        return None
    if raw == "":
        raise BinanceError(-1118 if name == "newClientOrderId" else -1119,
                           "New client order ID was empty." if name == "newClientOrderId"
                           else "Original client order ID was empty.")
    if not CLIENT_ID_RE.match(raw):
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                                  "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.")
    return raw


def _not_required(params: dict[str, str], name: str) -> None:
    if params.get(name):
        raise BinanceError(-1106, f"Parameter '{name}' sent when not required.")


def new_order(params: dict[str, str], rules: SymbolRules | None) -> tuple[NewOrder, str]:
    """The order a request asks for and the response type it wants; BinanceError for a bad request.
    ``rules`` are the symbol's (None: the symbol is not listed)."""
    unread = [name for name in params if name not in ORDER_PARAMS]
    if unread:
        raise BinanceError(-1104, f"Not all sent parameters were read; read '{len(params) - len(unread)}' "
                                  f"parameter(s) but was sent '{len(params)}'.")
    mandatory(params, "symbol")
    side = mandatory(params, "side")
    kind = mandatory(params, "type")
    if rules is None:
        raise BinanceError(-1121, "Invalid symbol.")
    if side not in ("BUY", "SELL"):
        raise BinanceError(-1117, "Invalid side.")
    if kind not in ALL_TYPES:
        raise BinanceError(-1116, "Invalid orderType.")
    if kind in _UNSUPPORTED:
        raise BinanceError(-2010, _UNSUPPORTED[kind])
    tif = params.get("timeInForce") or None
    if tif is not None and tif not in ("GTC", "IOC", "FOK"):
        raise BinanceError(-1115, "Invalid timeInForce.")
    if kind in _NEEDS_TIF:
        mandatory(params, "timeInForce")
    else:
        _not_required(params, "timeInForce")
    if params.get("icebergQty"):
        raise BinanceError(-2010, "Iceberg orders are not supported for this symbol.")
    if params.get("trailingDelta"):
        raise BinanceError(-2010, "Trailing stop orders are not supported for this symbol.")
    if params.get("quoteOrderQty"):
        raise BinanceError(-2010, "Quote order qty market orders are not support for this symbol.")
    qty = decimal_param(params, "quantity")
    if qty is None:
        if kind == "MARKET":
            raise BinanceError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
        mandatory(params, "quantity")
    price = decimal_param(params, "price")
    if kind in _NEEDS_PRICE:
        mandatory(params, "price")
    else:
        _not_required(params, "price")
    stop = decimal_param(params, "stopPrice")
    if kind in _NEEDS_STOP:
        mandatory(params, "stopPrice")
    else:
        _not_required(params, "stopPrice")
    response = params.get("newOrderRespType") or ("FULL" if kind in ("MARKET", "LIMIT") else "ACK")
    if response not in RESPONSE_TYPES:
        raise BinanceError(-1100, "Illegal characters found in parameter 'newOrderRespType'; legal range is "
                                  "'ACK, RESULT, FULL'.")
    client_id = client_id_param(params, "newClientOrderId") or generated_client_id()
    if qty is None or qty <= 0:
        raise BinanceError(-1013, "Filter failure: LOT_SIZE")
    return NewOrder(rules.symbol, side, kind, tif, qty, price, stop, client_id), response


def check_filters(order: NewOrder, rules: SymbolRules, current: Decimal) -> None:
    """PRICE_FILTER (price and stopPrice), LOT_SIZE / MARKET_LOT_SIZE, then NOTIONAL: -1013 on the first
    that fails. A market order's notional is taken at the current price."""
    for value in (order.price, order.stop_price):
        if value is not None and not rules.price_ok(value):
            raise BinanceError(-1013, "Filter failure: PRICE_FILTER")
    market = order.type == "MARKET"
    if not rules.lot_ok(order.qty, market=market):
        raise BinanceError(-1013, "Filter failure: MARKET_LOT_SIZE" if market and rules.lot_ok(
            order.qty, market=False) else "Filter failure: LOT_SIZE")
    price = order.price if order.price is not None else order.stop_price if order.stop_price is not None else current
    if not rules.notional_ok(order.qty * price, market=market):
        raise BinanceError(-1013, "Filter failure: NOTIONAL")
