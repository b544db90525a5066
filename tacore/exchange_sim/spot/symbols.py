"""Each simulated symbol's trading rules, as ``GET /api/v3/exchangeInfo`` lists them and the order
endpoint enforces them (``-1013 Filter failure: ...``).

The tick and lot come from the symbol's market profile (``minutes.make_profile``), so the prices the
market prints always pass ``PRICE_FILTER`` and its volumes ``LOT_SIZE``. Notional bounds depend on the
quote asset, at Binance's levels (5 USDT minimum on USDT pairs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tacore.exchange_sim.candle import UNITS
from tacore.exchange_sim.intervals import QUOTE_ASSETS
from tacore.exchange_sim.minutes import SymbolProfile

EIGHT = Decimal("0.00000001")
_UNIT = Decimal(UNITS)
#: (minNotional, maxNotional) by quote asset
_NOTIONAL = {
    "USDT": (Decimal(5), Decimal(9_000_000)),
    "FDUSD": (Decimal(5), Decimal(9_000_000)),
    "BTC": (Decimal("0.0001"), Decimal(1_000)),
    "ETH": (Decimal("0.001"), Decimal(10_000)),
    "BNB": (Decimal("0.01"), Decimal(100_000)),
}
#: order types the simulated symbols allow (Binance's TAKE_PROFIT family is not offered)
ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT")


def fmt8(value: Decimal) -> str:
    """Binance's rendering of an amount: always 8 decimals (``"0.10000000"``)."""
    return f"{value.quantize(EIGHT):f}"


def split_symbol(symbol: str) -> tuple[str, str] | None:
    """(base, quote) of a symbol the simulator can trade, or None."""
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return None


@dataclass(frozen=True, slots=True)
class SymbolRules:
    symbol: str
    base: str
    quote: str
    tick: Decimal
    min_price: Decimal
    max_price: Decimal
    step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    max_notional: Decimal

    @classmethod
    def from_profile(cls, profile: SymbolProfile) -> SymbolRules | None:
        parts = split_symbol(profile.symbol)
        if parts is None:
            return None
        base, quote = parts
        tick = Decimal(profile.tick) / _UNIT
        step = Decimal(profile.lot) / _UNIT
        price = profile.base_units / UNITS
        max_price = Decimal(10) ** (math.floor(math.log10(price)) + 3)
        min_notional, max_notional = _NOTIONAL[quote]
        return cls(profile.symbol, base, quote, tick, tick, max_price, step, step, step * 900_000_000,
                   step * 100_000_000, min_notional, max_notional)

    # -- the checks the API makes before an order reaches the matching engine --------------------------
    def price_ok(self, price: Decimal) -> bool:
        """PRICE_FILTER for ``price`` / ``stopPrice``."""
        return self.min_price <= price <= self.max_price and price % self.tick == 0

    def lot_ok(self, qty: Decimal, *, market: bool) -> bool:
        """LOT_SIZE (and MARKET_LOT_SIZE for market orders)."""
        if not (self.min_qty <= qty <= self.max_qty and qty % self.step == 0):
            return False
        return not market or qty <= self.market_max_qty

    def notional_ok(self, notional: Decimal, *, market: bool) -> bool:
        """NOTIONAL: minNotional applies to market orders too (applyMinToMarket), maxNotional does not."""
        if notional < self.min_notional:
            return False
        return market or notional <= self.max_notional

    # -- exchangeInfo ------------------------------------------------------------------------------------
    def filters(self) -> list[dict[str, Any]]:
        return [
            {"filterType": "PRICE_FILTER", "minPrice": fmt8(self.min_price), "maxPrice": fmt8(self.max_price),
             "tickSize": fmt8(self.tick)},
            {"filterType": "LOT_SIZE", "minQty": fmt8(self.min_qty), "maxQty": fmt8(self.max_qty),
             "stepSize": fmt8(self.step)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": fmt8(Decimal(0)), "maxQty": fmt8(self.market_max_qty),
             "stepSize": fmt8(Decimal(0))},
            {"filterType": "NOTIONAL", "minNotional": fmt8(self.min_notional), "applyMinToMarket": True,
             "maxNotional": fmt8(self.max_notional), "applyMaxToMarket": False, "avgPriceMins": 5},
        ]

    def info(self) -> dict[str, Any]:
        """The symbol's entry in ``exchangeInfo.symbols``, keys in Binance's order."""
        return {
            "symbol": self.symbol,
            "status": "TRADING",
            "baseAsset": self.base,
            "baseAssetPrecision": 8,
            "quoteAsset": self.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": list(ORDER_TYPES),
            "icebergAllowed": False,
            "ocoAllowed": False,
            "otoAllowed": False,
            "opoAllowed": False,
            "quoteOrderQtyMarketAllowed": False,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "amendAllowed": False,
            "pegInstructionsAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": self.filters(),
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"],
        }


def rate_limits(weight_per_minute: int, orders_per_10s: int, orders_per_day: int) -> list[dict[str, Any]]:
    """``exchangeInfo.rateLimits``: what the simulator enforces."""
    return [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_per_minute},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": orders_per_10s},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": orders_per_day},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61_000},
    ]
