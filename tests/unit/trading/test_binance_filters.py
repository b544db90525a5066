"""exchangeInfo filters checked before an order is sent: each rule, its message, and no rounding."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tacore.trading.venues.binance_filters import FilterViolation, SymbolRules, wire

D = Decimal

BTCUSDT: dict[str, Any] = {
    "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT",
    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT"],
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
         "tickSize": "0.01000000"},
        {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.00000000",
         "stepSize": "0.00000000"},
        {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
         "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
    ],
}


def rules() -> SymbolRules:
    return SymbolRules.from_exchange_info(BTCUSDT)


def check(kind: str = "LIMIT", qty: str = "0.01", price: str | None = "60000", stop: str | None = None,
          last: str | None = None) -> None:
    rules().check(order_type=kind, qty=D(qty), limit_price=None if price is None else D(price),
                  stop_price=None if stop is None else D(stop), last_price=None if last is None else D(last))


def test_parses_the_filters_it_checks_and_ignores_the_others() -> None:
    r = rules()
    assert (r.base_asset, r.quote_asset, r.status) == ("BTC", "USDT", "TRADING")
    assert r.price is not None and r.price.step == D("0.01")
    assert r.lot is not None and (r.lot.minimum, r.lot.step) == (D("0.00001"), D("0.00001"))
    assert r.market_lot is not None and r.market_lot.maximum == D(100)
    assert [n.minimum for n in r.notionals] == [D(5)]


def test_an_order_within_every_rule_passes() -> None:
    check()
    check("MARKET", price=None, last="60000")
    check("STOP_LOSS_LIMIT", price="59000", stop="59500")


@pytest.mark.parametrize(("kwargs", "kind", "words"), [
    ({"price": "60000.005"}, "PRICE_FILTER", "not a multiple of the tick size 0.01"),
    ({"price": "0.001"}, "PRICE_FILTER", "below the minimum 0.01"),
    ({"price": "2000000"}, "PRICE_FILTER", "above the maximum 1000000"),
    ({"kind": "STOP_LOSS", "price": None, "stop": "59000.001"}, "PRICE_FILTER", "tick size"),
    ({"qty": "0.000001"}, "LOT_SIZE", "below the minimum 0.00001"),
    ({"qty": "0.000015"}, "LOT_SIZE", "not a multiple of the step size 0.00001"),
    ({"qty": "9001"}, "LOT_SIZE", "above the maximum 9000"),
    ({"kind": "MARKET", "qty": "101", "price": None, "last": "1"}, "MARKET_LOT_SIZE", "above the maximum 100"),
    ({"qty": "0.00008"}, "NOTIONAL", "4.8 is below the minimum notional 5"),
    ({"qty": "200", "price": "60000"}, "NOTIONAL", "above the maximum notional 9000000"),
    ({"kind": "MARKET", "qty": "0.00001", "price": None, "last": "60000"}, "NOTIONAL", "0.6 is below"),
])
def test_each_filter_refuses_what_breaks_it_and_says_how(kwargs: dict[str, Any], kind: str, words: str) -> None:
    with pytest.raises(FilterViolation) as caught:
        check(**kwargs)
    assert caught.value.filter_type == kind
    assert words in str(caught.value)


def test_a_market_order_without_a_known_price_skips_the_notional_check() -> None:
    check("MARKET", qty="0.00001", price=None, last=None)  # the exchange checks it


def test_a_market_order_is_not_held_to_the_maximum_notional() -> None:
    check("MARKET", qty="99", price=None, last="100000")  # applyMaxToMarket is false


def test_legacy_min_notional_is_understood() -> None:
    legacy = {**BTCUSDT, "filters": [{"filterType": "MIN_NOTIONAL", "minNotional": "10", "applyToMarket": False,
                                      "avgPriceMins": 5}]}
    r = SymbolRules.from_exchange_info(legacy)
    with pytest.raises(FilterViolation, match="MIN_NOTIONAL"):
        r.check(order_type="LIMIT", qty=D(1), limit_price=D(5), stop_price=None, last_price=None)
    r.check(order_type="MARKET", qty=D(1), limit_price=None, stop_price=None, last_price=D(5))


def test_decimals_go_on_the_wire_as_plain_digits() -> None:
    assert [wire(D(v)) for v in ("0.00100000", "1E-7", "60000.10", "100")] == ["0.001", "0.0000001", "60000.1",
                                                                                "100"]
