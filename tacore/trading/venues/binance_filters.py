"""A Binance symbol's trading rules (``GET /api/v3/exchangeInfo``) and the check of an order against
them before it is sent, so an order the exchange would refuse with -1013 is refused here, with the
rule it breaks and by how much: ``PRICE_FILTER`` (price and stop price: bounds and tick),
``LOT_SIZE`` (quantity: bounds and step), ``MARKET_LOT_SIZE`` (market orders), ``NOTIONAL`` (price x
quantity within bounds; a market order at the latest price when TACore has one) and the legacy
``MIN_NOTIONAL``. Nothing is rounded: a price off the tick is refused, never moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tacore.trading.model.money import fmt, mul

#: TACore's order types as Binance spells them
BINANCE_TYPES = {"market": "MARKET", "limit": "LIMIT", "stop": "STOP_LOSS", "stop_limit": "STOP_LOSS_LIMIT"}


class FilterViolation(Exception):
    """The order breaks one of the symbol's filters; ``str`` says which and how."""

    def __init__(self, filter_type: str, message: str) -> None:
        super().__init__(f"{filter_type}: {message}")
        self.filter_type = filter_type


def _dec(raw: Any) -> Decimal:
    return Decimal(str(raw))


@dataclass(frozen=True, slots=True)
class Range:
    """Bounds and step of a price or a quantity; a 0 bound or step is no rule (Binance's convention)."""

    minimum: Decimal
    maximum: Decimal
    step: Decimal

    def problem(self, value: Decimal, what: str, step_name: str) -> str | None:
        if self.minimum and value < self.minimum:
            return f"{what} {fmt(value)} is below the minimum {fmt(self.minimum)}"
        if self.maximum and value > self.maximum:
            return f"{what} {fmt(value)} is above the maximum {fmt(self.maximum)}"
        if self.step and value % self.step != 0:
            return f"{what} {fmt(value)} is not a multiple of the {step_name} {fmt(self.step)}"
        return None


@dataclass(frozen=True, slots=True)
class Notional:
    minimum: Decimal
    maximum: Decimal | None
    min_to_market: bool
    max_to_market: bool


@dataclass(frozen=True, slots=True)
class SymbolRules:
    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    order_types: frozenset[str]
    price: Range | None = None
    lot: Range | None = None
    market_lot: Range | None = None
    notionals: tuple[Notional, ...] = field(default_factory=tuple)

    @classmethod
    def from_exchange_info(cls, entry: dict[str, Any]) -> SymbolRules:
        """From one element of ``exchangeInfo.symbols``; filters TACore does not check are ignored."""
        price = lot = market_lot = None
        notionals: list[Notional] = []
        for spec in entry.get("filters", []):
            kind = spec.get("filterType")
            if kind == "PRICE_FILTER":
                price = Range(_dec(spec["minPrice"]), _dec(spec["maxPrice"]), _dec(spec["tickSize"]))
            elif kind == "LOT_SIZE":
                lot = Range(_dec(spec["minQty"]), _dec(spec["maxQty"]), _dec(spec["stepSize"]))
            elif kind == "MARKET_LOT_SIZE":
                market_lot = Range(_dec(spec["minQty"]), _dec(spec["maxQty"]), _dec(spec["stepSize"]))
            elif kind == "NOTIONAL":
                notionals.append(Notional(_dec(spec["minNotional"]), _dec(spec["maxNotional"]),
                                          bool(spec.get("applyMinToMarket", True)),
                                          bool(spec.get("applyMaxToMarket", False))))
            elif kind == "MIN_NOTIONAL":
                notionals.append(Notional(_dec(spec["minNotional"]), None, bool(spec.get("applyToMarket", True)),
                                          False))
        return cls(str(entry["symbol"]), str(entry.get("status", "TRADING")), str(entry.get("baseAsset", "")),
                   str(entry.get("quoteAsset", "")), frozenset(entry.get("orderTypes", BINANCE_TYPES.values())),
                   price, lot, market_lot, tuple(notionals))

    def check(self, *, order_type: str, qty: Decimal, limit_price: Decimal | None, stop_price: Decimal | None,
              last_price: Decimal | None) -> None:
        """Raise ``FilterViolation`` for the first filter the order breaks (Binance's order of checks).
        ``order_type`` is Binance's; ``last_price`` prices a market order's notional (None: not checked)."""
        if self.price is not None:
            for value in (limit_price, stop_price):
                if value is not None and (problem := self.price.problem(value, "price", "tick size")):
                    raise FilterViolation("PRICE_FILTER", problem)
        market = order_type == "MARKET"
        if self.lot is not None and (problem := self.lot.problem(qty, "quantity", "step size")):
            raise FilterViolation("LOT_SIZE", problem)
        if market and self.market_lot is not None and (problem := self.market_lot.problem(qty, "quantity",
                                                                                            "step size")):
            raise FilterViolation("MARKET_LOT_SIZE", problem)
        price = limit_price if limit_price is not None else stop_price if stop_price is not None else last_price
        if price is None:
            return
        notional = mul(qty, price)
        for rule in self.notionals:
            kind = "NOTIONAL" if rule.maximum is not None else "MIN_NOTIONAL"
            if (not market or rule.min_to_market) and notional < rule.minimum:
                raise FilterViolation(kind, f"price x quantity {fmt(notional)} is below the minimum notional "
                                            f"{fmt(rule.minimum)}")
            if rule.maximum and (not market or rule.max_to_market) and notional > rule.maximum:
                raise FilterViolation(kind, f"price x quantity {fmt(notional)} is above the maximum notional "
                                            f"{fmt(rule.maximum)}")


def wire(value: Decimal) -> str:
    """A decimal as Binance takes it: plain digits, no exponent, no trailing zeros (``"0.001"``)."""
    return fmt(value) or "0"

