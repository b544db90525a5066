"""Each paper venue price rule on candles with a known answer (tacore/trading/pricing.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from trading_helpers import candle, costs

from tacore.trading.model import Side
from tacore.trading.pricing import (
    arrival_limit_price,
    fee,
    market_price,
    resting_limit_price,
    stop_reached,
    stop_trigger_price,
    touch_price,
)

D = Decimal


def test_a_market_order_pays_the_last_price_moved_against_it_by_half_spread_and_slippage() -> None:
    c = costs(half_spread_bps="5", slippage_bps="10")  # 15 bps in all
    assert market_price(Side.BUY, D("100"), c) == D("100.15")
    assert market_price(Side.SELL, D("100"), c) == D("99.85")
    assert touch_price(Side.BUY, D("100"), c) == D("100.05")


def test_with_no_spread_or_slippage_a_market_order_pays_the_last_price_exactly() -> None:
    assert market_price(Side.BUY, D("67123.45"), costs()) == D("67123.45")


@pytest.mark.parametrize(("side", "limit", "expected"), [
    ("buy", "101", D("100")),  # marketable: the better of limit and last
    ("buy", "100", D("100")),  # at the last price: marketable
    ("buy", "99.99", None),  # below the last: rests
    ("sell", "99", D("100")),
    ("sell", "100.01", None),
])
def test_a_marketable_limit_fills_at_once_at_the_better_of_its_limit_and_the_last_price(
        side: str, limit: str, expected: Decimal | None) -> None:
    assert arrival_limit_price(Side(side), D(limit), D("100"), costs()) == expected


def test_an_arriving_limit_must_reach_the_touch_and_never_pays_past_its_limit() -> None:
    c = costs(half_spread_bps="10", slippage_bps="10")  # ask 100.10, market price 100.20
    assert arrival_limit_price(Side.BUY, D("100.05"), D("100"), c) is None  # below the ask: rests
    assert arrival_limit_price(Side.BUY, D("100.15"), D("100"), c) == D("100.15")  # capped by its limit
    assert arrival_limit_price(Side.BUY, D("101"), D("100"), c) == D("100.2")  # the market price, better


@pytest.mark.parametrize(("side", "limit", "bar", "expected"), [
    ("buy", "100", ("102", "103", "99", "101"), D("100")),  # traded through: at the limit
    ("buy", "100", ("98", "99", "97", "98.5"), D("98")),  # gapped below: at the open
    ("buy", "100", ("101", "103", "100", "102"), D("100")),  # touched (low == limit): fills
    ("buy", "100", ("101", "103", "100.01", "102"), None),  # never reached
    ("sell", "105", ("103", "106", "102", "104"), D("105")),
    ("sell", "105", ("107", "108", "104", "106"), D("107")),  # gapped above: at the open
    ("sell", "105", ("103", "104.99", "102", "104"), None),
])
def test_a_resting_limit_fills_on_a_candle_that_trades_through_it_at_the_better_of_limit_and_open(
        side: str, limit: str, bar: tuple[str, str, str, str], expected: Decimal | None) -> None:
    assert resting_limit_price(Side(side), D(limit), candle(*bar)) == expected


@pytest.mark.parametrize(("side", "stop", "bar", "expected"), [
    ("buy", "105", ("103", "106", "102", "104"), D("105")),  # high reaches the stop: at the stop
    ("buy", "105", ("107", "108", "106", "107"), D("107")),  # gap above: the worse, the open
    ("buy", "105", ("103", "104.9", "102", "104"), None),
    ("sell", "95", ("97", "98", "94", "96"), D("95")),
    ("sell", "95", ("93", "94", "92", "93"), D("93")),  # gap below: the open
    ("sell", "95", ("97", "98", "95.01", "96"), None),
])
def test_a_stop_triggers_on_the_high_or_low_at_the_worse_of_stop_and_open(
        side: str, stop: str, bar: tuple[str, str, str, str], expected: Decimal | None) -> None:
    assert stop_trigger_price(Side(side), D(stop), candle(*bar)) == expected


def test_a_triggered_stop_pays_slippage_on_its_trigger_price() -> None:
    at = stop_trigger_price(Side.BUY, D("105"), candle("107", "108", "106", "107"))
    assert at is not None
    assert market_price(Side.BUY, at, costs(slippage_bps="20")) == D("107.214")


def test_a_stop_already_reached_on_arrival_is_seen() -> None:
    assert stop_reached(Side.BUY, D("100"), D("100"))
    assert not stop_reached(Side.BUY, D("100"), D("99.9"))
    assert stop_reached(Side.SELL, D("100"), D("99"))


def test_fees_are_basis_points_of_the_notional_rounded_to_ten_places() -> None:
    assert fee(D("1000"), D("2")) == D("0.2")
    assert fee(D("0.123456789"), D("7.5")) == D("0.0000925926")
