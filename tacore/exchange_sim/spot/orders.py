"""An order and a trade as the simulated exchange holds them, and their JSON in Binance's shapes
(the ACK / RESULT / FULL answers of ``POST /api/v3/order``, the query and cancel answers, a trade of
``GET /api/v3/myTrades``), keys in Binance's order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tacore.exchange_sim.spot.accounts import SpotAccount
from tacore.exchange_sim.spot.symbols import fmt8

ZERO = Decimal(0)
OPEN = frozenset({"NEW", "PARTIALLY_FILLED"})
STOP_TYPES = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT"})


@dataclass(frozen=True, slots=True)
class Trade:
    trade_id: int
    order_id: int
    symbol: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool

    def fill(self) -> dict[str, Any]:
        """An entry of a FULL answer's ``fills``."""
        return {"price": fmt8(self.price), "qty": fmt8(self.qty), "commission": fmt8(self.commission),
                "commissionAsset": self.commission_asset, "tradeId": self.trade_id}

    def record(self) -> dict[str, Any]:
        """A row of ``GET /api/v3/myTrades``."""
        return {"symbol": self.symbol, "id": self.trade_id, "orderId": self.order_id, "orderListId": -1,
                "price": fmt8(self.price), "qty": fmt8(self.qty), "quoteQty": fmt8(self.quote_qty),
                "commission": fmt8(self.commission), "commissionAsset": self.commission_asset,
                "time": self.time, "isBuyer": self.is_buyer, "isMaker": self.is_maker, "isBestMatch": True}


@dataclass(eq=False)
class SimOrder:
    symbol: str
    order_id: int
    client_order_id: str
    account: SpotAccount
    side: str  # BUY | SELL
    type: str  # LIMIT | LIMIT_MAKER | MARKET | STOP_LOSS | STOP_LOSS_LIMIT
    time_in_force: str  # GTC | IOC | FOK (GTC for the types that take none, as Binance shows them)
    qty: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    time: int
    status: str = "NEW"
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    update_time: int = 0
    working: bool = True  # a stop is not working until its price is reached
    working_time: int = -1
    #: the asset this order locked and how much of it is still locked
    locked_asset: str = ""
    locked: Decimal = ZERO
    #: the price the lock was computed at (a buy's limit, or its stop for a stop-market)
    lock_price: Decimal = ZERO
    trades: list[Trade] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.executed

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    # -- the answers ------------------------------------------------------------------------------------
    def _price_fields(self) -> dict[str, Any]:
        return {"price": fmt8(self.price or ZERO), "origQty": fmt8(self.qty), "executedQty": fmt8(self.executed)}

    def ack(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "orderId": self.order_id, "orderListId": -1,
                "clientOrderId": self.client_order_id, "transactTime": self.time}

    def result(self) -> dict[str, Any]:
        out = self.ack()
        out.update(self._price_fields())
        out.update({"origQuoteOrderQty": fmt8(ZERO), "cummulativeQuoteQty": fmt8(self.cum_quote),
                    "status": self.status, "timeInForce": self.time_in_force, "type": self.type, "side": self.side})
        if self.type in STOP_TYPES:
            out["stopPrice"] = fmt8(self.stop_price or ZERO)
        out["workingTime"] = self.working_time
        out["selfTradePreventionMode"] = "NONE"
        return out

    def full(self, fills: list[Trade]) -> dict[str, Any]:
        out = self.result()
        out["fills"] = [t.fill() for t in fills]
        return out

    def query(self) -> dict[str, Any]:
        """``GET /api/v3/order`` and each entry of ``GET /api/v3/openOrders``."""
        out: dict[str, Any] = {"symbol": self.symbol, "orderId": self.order_id, "orderListId": -1,
                               "clientOrderId": self.client_order_id}
        out.update(self._price_fields())
        out.update({"cummulativeQuoteQty": fmt8(self.cum_quote), "status": self.status,
                    "timeInForce": self.time_in_force, "type": self.type, "side": self.side})
        if self.type in STOP_TYPES:
            out["stopPrice"] = fmt8(self.stop_price or ZERO)
        out.update({"time": self.time, "updateTime": self.update_time, "isWorking": self.working,
                    "workingTime": self.working_time, "origQuoteOrderQty": fmt8(ZERO),
                    "selfTradePreventionMode": "NONE"})
        return out

    def canceled(self, cancel_client_id: str, now: int) -> dict[str, Any]:
        """``DELETE /api/v3/order``."""
        out: dict[str, Any] = {"symbol": self.symbol, "origClientOrderId": self.client_order_id,
                               "orderId": self.order_id, "orderListId": -1, "clientOrderId": cancel_client_id,
                               "transactTime": now}
        out.update(self._price_fields())
        out.update({"origQuoteOrderQty": fmt8(ZERO), "cummulativeQuoteQty": fmt8(self.cum_quote),
                    "status": self.status, "timeInForce": self.time_in_force, "type": self.type, "side": self.side})
        if self.type in STOP_TYPES:
            out["stopPrice"] = fmt8(self.stop_price or ZERO)
        out["selfTradePreventionMode"] = "NONE"
        return out
