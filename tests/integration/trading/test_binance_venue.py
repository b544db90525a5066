"""The Binance venue against TACore's exchange simulator (a real HTTP server speaking Binance's spot API):
orders, fills and balances in and out of Binance's formats; every mapped error code; the clock skew a
resync fixes and the one it cannot; back-off as Retry-After says; filters caught before sending; a lost
answer found by client order id and never placed twice; keys never in a log or an error."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from binance_helpers import SimControl, make_order, make_venue, new_key
from pydantic import SecretStr

from tacore.exchange_sim import ExchangeSimulator, SimConfig
from tacore.trading.model import Liquidity, OrderStatus
from tacore.trading.model.money import mul
from tacore.trading.venues.base import VenueError, VenueErrorCode
from tacore.trading.venues.binance import BinanceVenue
from tacore.trading.venues.binance_rest import BinanceRestClient
from tacore.trading.venues.binance_signing import BinanceCredentials

D = Decimal
C = VenueErrorCode


@pytest.fixture(scope="module")
def sim() -> Iterator[ExchangeSimulator]:
    with ExchangeSimulator(SimConfig(alpaca=False, clock_speed=1.0, seed=11)) as running:
        yield running


@pytest.fixture
def control(sim: ExchangeSimulator) -> Iterator[SimControl]:
    ctl = SimControl(sim.rest_url)
    yield ctl
    ctl.reset()


@pytest.fixture
def keys(control: SimControl) -> tuple[str, str]:
    return control.add_account({"USDT": "100000", "BTC": "1", "ETH": "5"})


@pytest.fixture
def venue(sim: ExchangeSimulator, keys: tuple[str, str]) -> Iterator[BinanceVenue]:
    made = make_venue(sim.rest_url, *keys)
    yield made
    made.client.close()


def price(sim: ExchangeSimulator, symbol: str = "BTCUSDT") -> Decimal:
    return sim.call(sim.spot.engine.price, symbol)  # type: ignore[no-any-return]


def refused(call: object, *args: object) -> VenueError:
    with pytest.raises(VenueError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


# -- orders, fills, balances ---------------------------------------------------------------------------------
def test_a_market_order_fills_with_its_trade_and_the_base_commission_in_quote(
        sim: ExchangeSimulator, venue: BinanceVenue, control: SimControl, keys: tuple[str, str]) -> None:
    order = make_order(qty="0.01")
    report = venue.submit(order)
    assert (report.status, report.filled_qty, report.client_order_id) == (OrderStatus.FILLED, D("0.01"),
                                                                          order.client_order_id)
    (fill,) = report.fills
    assert fill.liquidity is Liquidity.TAKER and fill.qty == D("0.01")
    assert fill.fee == mul(D("0.00001"), fill.price)  # 0.1 % of 0.01 BTC, taken in BTC, priced in USDT
    (at_exchange,) = control.orders_with(keys[0], order.client_order_id)
    assert report.venue_order_id == str(at_exchange["orderId"])
    balances = {b.asset: b for b in venue.balances("live")}
    assert balances["BTC"].free == D("1.00999") and balances["USDT"].free == D(100000) - fill.qty * fill.price


def test_a_resting_limit_is_queried_listed_and_canceled(sim: ExchangeSimulator, venue: BinanceVenue) -> None:
    low = (price(sim) * D("0.8")).quantize(D("0.01"))
    order = make_order(type="limit", qty="0.02", limit=low)
    assert venue.submit(order).status is OrderStatus.NEW
    queried = venue.query(order)
    assert queried is not None and (queried.status, queried.filled_qty, queried.fills) == (OrderStatus.NEW, 0, ())
    assert [r.client_order_id for r in venue.open_orders("live")] == [order.client_order_id]
    locked = {b.asset: b for b in venue.balances("live")}["USDT"].locked
    assert locked == low * D("0.02")
    canceled = venue.cancel(order)
    assert canceled.status is OrderStatus.CANCELED and canceled.client_order_id == order.client_order_id
    again = refused(venue.cancel, order)
    assert (again.code, again.venue_code) == (C.UNKNOWN_ORDER, -2011)
    after = venue.query(order)
    assert after is not None and after.status is OrderStatus.CANCELED
    assert venue.open_orders("live") == []


def test_a_stop_rests_untriggered_and_a_stop_past_the_price_is_refused(
        sim: ExchangeSimulator, venue: BinanceVenue) -> None:
    now = price(sim)
    below, above = (now * D("0.9")).quantize(D("0.01")), (now * D("1.1")).quantize(D("0.01"))
    waiting = venue.submit(make_order(side="sell", type="stop", qty="0.01", stop=below))
    assert waiting.status is OrderStatus.NEW and not waiting.triggered
    limit = venue.submit(make_order(side="sell", type="stop_limit", qty="0.01", stop=below, limit=below))
    assert limit.status is OrderStatus.NEW
    error = refused(venue.submit, make_order(side="sell", type="stop", qty="0.01", stop=above))
    assert (error.code, error.venue_code) == (C.REJECTED, -2010)
    assert "Order would trigger immediately." in error.message and not error.outcome_unknown


def test_day_orders_are_refused_except_market_orders(venue: BinanceVenue, control: SimControl,
                                                     keys: tuple[str, str]) -> None:
    error = refused(venue.submit, make_order(type="limit", tif="day", limit="1000", qty="0.01"))
    assert error.code is C.REJECTED and "no day orders" in error.message
    assert control.truth(keys[0])["orders"] == []
    assert venue.submit(make_order(tif="day", qty="0.001")).status is OrderStatus.FILLED


# -- errors, each mapped ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "filter_type"), [
    ({"type": "limit", "limit": "60000.001"}, "PRICE_FILTER"),
    ({"qty": "0.000015"}, "LOT_SIZE"),
    ({"type": "limit", "limit": "100", "qty": "0.01"}, "NOTIONAL"),
    ({"type": "stop", "stop": "0.001"}, "PRICE_FILTER"),
])
def test_filter_failures_are_caught_before_sending(venue: BinanceVenue, control: SimControl,
                                                   keys: tuple[str, str], kwargs: dict[str, str],
                                                   filter_type: str) -> None:
    venue.balances("live")  # the clock is synced: what follows is the order alone
    before = control.spot_stats()["requests"]
    error = refused(venue.submit, make_order(**kwargs))
    assert error.code is C.FILTER and filter_type in error.message and "checked before sending" in error.message
    after = control.spot_stats()["requests"]
    assert after - before <= 1  # at most exchangeInfo: no order request reached the exchange
    assert control.truth(keys[0])["orders"] == []


def test_a_filter_failure_found_by_the_exchange_is_filter_1013(venue: BinanceVenue) -> None:
    # a market order's notional is only known to the exchange when TACore has no price for it:
    # 0.001 ETH (the least LOT_SIZE allows) is worth about 3 USDT, below the 5 USDT minimum notional
    error = refused(venue.submit, make_order(symbol="ETHUSDT", qty="0.001"))
    assert (error.code, error.venue_code) == (C.FILTER, -1013) and "NOTIONAL" in error.message


def test_insufficient_balance_is_rejected_2010(venue: BinanceVenue) -> None:
    error = refused(venue.submit, make_order(side="sell", qty="50"))
    assert (error.code, error.venue_code) == (C.REJECTED, -2010)
    assert error.message.endswith("Account has insufficient balance for requested action.")


def test_bad_parameters_are_rejected_1100_and_1102(sim: ExchangeSimulator, venue: BinanceVenue) -> None:
    from tacore.trading.venues.binance_errors import BinanceApiError, venue_error

    for params, code in (({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1e-3"}, -1100),
                         ({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1",
                           "timeInForce": "GTC"}, -1102)):
        with pytest.raises(BinanceApiError) as caught:
            venue.client.signed("POST", "/api/v3/order", params)
        error = venue_error(caught.value, changes_state=True)
        assert (error.code, error.venue_code, error.outcome_unknown) == (C.REJECTED, code, False)


def test_key_errors_are_auth(sim: ExchangeSimulator, control: SimControl, keys: tuple[str, str]) -> None:
    cases = [(make_venue(sim.rest_url, keys[0], new_key()), -1022),
             (make_venue(sim.rest_url, new_key(), new_key()), -2015),
             (make_venue(sim.rest_url, "not-a-key", new_key()), -2014)]
    for bad, code in cases:
        error = refused(bad.balances, "live")
        assert (error.code, error.venue_code) == (C.AUTH, code)
    reader_keys = control.add_account({"USDT": "10"}, can_trade=False)
    reader = make_venue(sim.rest_url, *reader_keys)
    assert {b.asset for b in reader.balances("live")} == {"USDT"}
    error = refused(reader.submit, make_order(qty="0.001"))
    assert (error.code, error.venue_code) == (C.AUTH, -2015)


def test_missing_keys_are_auth_naming_the_variables(sim: ExchangeSimulator) -> None:
    client = BinanceRestClient(sim.rest_url, None, missing_hint="account live: set BINANCE_API_KEY and "
                                                                "BINANCE_API_SECRET")
    error = refused(BinanceVenue("live", client).submit, make_order())
    assert error.code is C.AUTH and "BINANCE_API_KEY" in error.message


def test_an_unknown_order_is_none_once_its_request_can_no_longer_arrive(sim: ExchangeSimulator,
                                                                        keys: tuple[str, str]) -> None:
    fresh = make_venue(sim.rest_url, *keys, recv_window_ms=1_000, settle_margin_ms=0)
    order = make_order()
    early = refused(fresh.query, order)  # this process may have sent it a moment ago
    assert (early.code, early.venue_code, early.outcome_unknown) == (C.UNAVAILABLE, -2013, True)
    time.sleep(1.1)
    assert fresh.query(order) is None


def test_a_5xx_is_unavailable(venue: BinanceVenue, control: SimControl) -> None:
    venue.balances("live")
    control.fail_next(500)
    error = refused(venue.query, make_order())
    assert (error.code, error.venue_code, error.outcome_unknown) == (C.UNAVAILABLE, -1000, False)


def test_an_exchange_that_cannot_be_reached_has_placed_nothing(keys: tuple[str, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = refused(make_venue(f"http://127.0.0.1:{port}", *keys).submit, make_order())
    assert error.code is C.UNAVAILABLE and not error.outcome_unknown


# -- the clock -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("skew_ms", [10_000, -10_000])
def test_clock_skew_is_resolved_by_a_resync_and_one_retry(venue: BinanceVenue, control: SimControl,
                                                          keys: tuple[str, str], skew_ms: int) -> None:
    venue.balances("live")  # synced while the clocks agree
    assert abs(venue.client.offset_ms or 0) < 1_000
    control.skew(skew_ms)
    errors_before = control.spot_stats()["errors"]
    order = make_order(qty="0.001")
    assert venue.submit(order).status is OrderStatus.FILLED
    assert abs((venue.client.offset_ms or 0) - skew_ms) < 1_000
    assert control.spot_stats()["errors"] - errors_before == 1  # the one -1021 before the resync
    assert len(control.orders_with(keys[0], order.client_order_id)) == 1


def test_skew_a_resync_cannot_fix_is_clock_skew_and_nothing_is_placed(venue: BinanceVenue, control: SimControl,
                                                                     keys: tuple[str, str]) -> None:
    venue.balances("live")
    control.skew(20_000, hide_from_time=True)
    error = refused(venue.submit, make_order(qty="0.001"))
    assert (error.code, error.venue_code, error.outcome_unknown) == (C.CLOCK_SKEW, -1021, False)
    assert "even after resyncing" in error.message
    assert control.truth(keys[0])["orders"] == []


# -- rate limits -------------------------------------------------------------------------------------------------
def test_a_short_retry_after_is_waited_out_and_the_order_sent_once_more(venue: BinanceVenue, control: SimControl,
                                                                       keys: tuple[str, str]) -> None:
    venue.balances("live")
    control.fail_next(429, retry_after=1)
    order = make_order(qty="0.001")
    started = time.monotonic()
    assert venue.submit(order).status is OrderStatus.FILLED
    assert time.monotonic() - started >= 1.0
    assert len(control.orders_with(keys[0], order.client_order_id)) == 1


def test_a_long_retry_after_backs_off_without_sending_anything(venue: BinanceVenue, control: SimControl) -> None:
    venue.balances("live")
    control.fail_next(429, retry_after=30)
    error = refused(venue.submit, make_order(qty="0.001"))
    assert (error.code, error.retry_after_s, error.outcome_unknown) == (C.RATE_LIMITED, 30.0, False)
    sent = control.spot_stats()["requests"]
    for call, args in ((venue.query, (make_order(),)), (venue.balances, ("live",)), (venue.submit, (make_order(),))):
        later = refused(call, *args)
        assert later.code is C.RATE_LIMITED and 25 < (later.retry_after_s or 0) <= 30
    assert control.spot_stats()["requests"] == sent  # nothing went out while told to wait


def test_a_418_ban_is_rate_limited_for_as_long_as_it_lasts(venue: BinanceVenue, control: SimControl) -> None:
    venue.balances("live")
    control.fail_next(418, retry_after=120)
    error = refused(venue.balances, "live")
    assert (error.code, error.retry_after_s, error.venue_code) == (C.RATE_LIMITED, 120.0, -1003)
    assert "banned" in error.message


# -- exactly once ------------------------------------------------------------------------------------------------
def test_a_lost_answer_is_found_by_client_order_id_and_never_placed_twice(
        sim: ExchangeSimulator, control: SimControl, keys: tuple[str, str]) -> None:
    impatient = make_venue(sim.rest_url, *keys, timeout_s=0.5)
    impatient.balances("live")
    control.reply_fault("delay", 2.0)
    order = make_order(qty="0.002")
    report = impatient.submit(order)  # timed out; asked for the order by its client order id
    assert (report.status, report.filled_qty) == (OrderStatus.FILLED, D("0.002")) and len(report.fills) == 1
    assert len(control.orders_with(keys[0], order.client_order_id)) == 1


def test_a_5xx_after_the_order_was_carried_out_is_answered_from_the_exchange(
        venue: BinanceVenue, control: SimControl, keys: tuple[str, str]) -> None:
    venue.balances("live")
    control.reply_fault("unknown")
    order = make_order(side="sell", qty="0.003")
    report = venue.submit(order)
    assert report.status is OrderStatus.FILLED and report.filled_qty == D("0.003")
    assert len(control.orders_with(keys[0], order.client_order_id)) == 1


def test_sending_an_open_order_again_answers_the_first_one(sim: ExchangeSimulator, venue: BinanceVenue,
                                                          control: SimControl, keys: tuple[str, str]) -> None:
    low = (price(sim) * D("0.8")).quantize(D("0.01"))
    order = make_order(type="limit", qty="0.01", limit=low)
    first = venue.submit(order)
    again = venue.submit(order)  # -2010 Duplicate order sent. -> the order the exchange has
    assert (again.status, again.venue_order_id) == (first.status, first.venue_order_id)
    assert len(control.orders_with(keys[0], order.client_order_id)) == 1


# -- secrets -----------------------------------------------------------------------------------------------------
def test_keys_never_reach_a_log_record_or_an_error(sim: ExchangeSimulator, control: SimControl,
                                                   keys: tuple[str, str], caplog: pytest.LogCaptureFixture) -> None:
    key, secret = keys
    wrong_secret = new_key()
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx, httpcore
    errors: list[VenueError] = []
    venue = make_venue(sim.rest_url, key, secret, timeout_s=0.5)
    venue.submit(make_order(qty="0.001"))
    control.skew(8_000)
    venue.submit(make_order(qty="0.001"))  # -1021, resync, retry
    control.skew(0)
    control.reply_fault("delay", 1.0)
    venue.submit(make_order(qty="0.001"))  # a lost answer
    for call in (lambda: venue.submit(make_order(qty="0.000015")),
                 lambda: venue.submit(make_order(side="sell", qty="99")),
                 lambda: make_venue(sim.rest_url, key, wrong_secret).balances("live")):
        with pytest.raises(VenueError) as caught:
            call()
        errors.append(caught.value)
    control.fail_next(429, retry_after=5)
    with pytest.raises(VenueError) as limited:
        venue.balances("live")
    errors.append(limited.value)
    assert caplog.records, "nothing was logged: the test would prove nothing"
    texts = [caplog.text] + [r.getMessage() for r in caplog.records] + [str(r.__dict__) for r in caplog.records]
    texts += [str(e) for e in errors] + [repr(e.__cause__) + repr(e.__context__) for e in errors]
    texts += [repr(venue), repr(venue.client), repr(venue.client._credentials)]
    for text in texts:
        for secret_value in (key, secret, wrong_secret):
            assert secret_value not in text
    assert any("POST /api/v3/order" in r.getMessage() for r in caplog.records)  # the request log is there
    assert not any("signature=" in m and "signature=***" not in m for m in (r.getMessage() for r in caplog.records))


def test_credentials_repr_is_redacted() -> None:
    key, secret = new_key(), new_key()
    creds = BinanceCredentials(SecretStr(key), SecretStr(secret))
    assert key not in repr(creds) and secret not in repr(creds)


def test_the_order_rate_limit_1015_is_rate_limited_with_the_wait_and_nothing_placed() -> None:
    with ExchangeSimulator(SimConfig(alpaca=False, clock_speed=1.0, seed=11, spot_orders_per_10s=2)) as strict:
        control = SimControl(strict.rest_url)
        keys = control.add_account({"USDT": "100000"})
        venue = make_venue(strict.rest_url, *keys, max_wait_s=0.0)
        try:
            for _ in range(2):
                assert venue.submit(make_order(qty="0.001")).status is OrderStatus.FILLED
            third = make_order(qty="0.001")
            error = refused(venue.submit, third)
            assert (error.code, error.venue_code, error.outcome_unknown) == (C.RATE_LIMITED, -1015, False)
            assert 1 <= (error.retry_after_s or 0) <= 10 and "Too many new orders" in error.message
            assert control.orders_with(keys[0], third.client_order_id) == []
        finally:
            venue.client.close()
