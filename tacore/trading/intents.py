"""What a caller asks the engine to do, checked and normalised: the order intent and its payload hash."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal

import orjson

from tacore.trading.model import OrderType, Side, TimeInForce
from tacore.trading.model.money import fmt

#: Client order ids every venue takes (Binance's ``newClientOrderId``: up to 36 of these characters).
CLIENT_ORDER_ID_RE = re.compile(r"^[A-Za-z0-9._:/-]{1,36}$")


@dataclass(frozen=True, slots=True)
class OrderIntent:
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    qty: Decimal
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    account: str | None = None  # None: the default account (or the first account on ``venue``)
    venue: str | None = None
    client_order_id: str | None = None  # None: derived from request_id
    request_id: str | None = None

    def payload_hash(self, account: str, venue: str) -> str:
        """What must match for a repeated client order id to mean the same order."""
        payload = [account, venue, self.symbol, self.side.value, self.type.value, self.time_in_force.value,
                   fmt(self.qty), fmt(self.limit_price), fmt(self.stop_price)]
        return hashlib.sha256(orjson.dumps(payload)).hexdigest()


def default_client_order_id(request_id: str | None) -> str | None:
    """The request_id itself when it is a valid client order id (a uuid4 hex is), else ``r-`` and 34
    characters of its SHA-256; None without a request_id (the engine then makes a random one)."""
    if request_id is None:
        return None
    if CLIENT_ORDER_ID_RE.match(request_id):
        return request_id
    return "r-" + hashlib.sha256(request_id.encode()).hexdigest()[:34]
