"""The paper venue's decisions on arrival and on candles: rejections with reasons, ioc/fok, the volume cap,
stops, day expiry and market hours (tacore/trading/venues/paper.py)."""

from __future__ import annotations

from decimal import Decimal

from trading_helpers import T0, candle, order, paper_venue

from tacore.trading.model import Liquidity, OrderStatus
from tacore.trading.venues.paper import EXPIRY_GRACE_MS

D = Decimal
#: Saturday 2027-01-16 15:00 UTC: NYSE closed
SATURDAY = 1_800_000_000_000 - 1_800_000_000_000 % 60_000 + 86_400_000
#: Tuesday 2027-01-19 15:00 UTC: NYSE open (10:00 New York)
TUESDAY_OPEN = 1_800_000_000_000 - 1_800_000_000_000 % 86_400_000 + 4 * 86_400_000 + 15 * 3_600_000


def test_a_market_buy_fills_at_once_at_the_last_price_plus_costs_with_the_taker_fee() -> None:
    venue, _, quotes = paper_venue(half_spread_bps="1", slippage_bps="2", taker_fee_bps="10")
    quotes.set("BTCUSDT", "100")
    report = venue.submit(order(qty="2"))
    assert report.status is OrderStatus.FILLED
    (fill,) = report.fills
    assert (fill.qty, fill.price, fill.liquidity) == (D("2"), D("100.03"), Liquidity.TAKER)
    assert fill.fee == D("0.20006")  # 10 bps of 200.06


def test_orders_the_venue_cannot_take_are_rejected_with_the_reason() -> None:
    venue, _, quotes = paper_venue()
    assert venue.submit(order(symbol="NOPE_X")).reason.startswith("unknown symbol")  # type: ignore[union-attr]
    assert venue.submit(order()).reason == "no price for BTCUSDT"
    quotes.set("BTCUSDT", "100")
    poor = venue.submit(order(qty="1000"))  # 100,000 USDT and a 2 bps fee asked, 10,000 held
    assert poor.status is OrderStatus.REJECTED and poor.reason is not None
    assert poor.reason.startswith("insufficient funds: 100020 USDT needed, 10000 available")
    short = venue.submit(order(side="sell"))
    assert short.status is OrderStatus.REJECTED and "insufficient position" in (short.reason or "")


def test_a_resting_buy_needs_funds_for_what_it_would_reserve() -> None:
    venue, _, quotes = paper_venue(maker_fee_bps="0", taker_fee_bps="0")
    quotes.set("BTCUSDT", "100")
    assert venue.submit(order(type="limit", limit="90", qty="111")).status is OrderStatus.NEW  # 9,990 <= 10,000
    refused = venue.submit(order(type="limit", limit="90", qty="112"))
    assert refused.status is OrderStatus.REJECTED


def test_a_market_order_for_a_closed_market_is_rejected_but_a_resting_limit_waits_for_the_session() -> None:
    venue, _, quotes = paper_venue(clock_ms=SATURDAY)
    quotes.set("AAPL", "200", ts_ms=SATURDAY)
    closed = venue.submit(order(symbol="AAPL", quote_asset="USD", ts_ms=SATURDAY))
    assert closed.status is OrderStatus.REJECTED and (closed.reason or "").startswith("market closed")
    marketable = order(symbol="AAPL", quote_asset="USD", type="limit", limit="250", ts_ms=SATURDAY)
    assert venue.submit(marketable).status is OrderStatus.NEW  # no fill while closed, even at 250
    ioc = venue.submit(order(symbol="AAPL", quote_asset="USD", type="limit", limit="250", tif="ioc", ts_ms=SATURDAY))
    assert ioc.status is OrderStatus.REJECTED


def test_a_market_order_trades_while_the_nyse_is_open() -> None:
    venue, _, quotes = paper_venue(clock_ms=TUESDAY_OPEN)
    quotes.set("AAPL", "200", ts_ms=TUESDAY_OPEN)
    assert venue.submit(order(symbol="AAPL", quote_asset="USD", ts_ms=TUESDAY_OPEN)).status is OrderStatus.FILLED


def test_ioc_and_fok_never_rest() -> None:
    venue, _, quotes = paper_venue()
    quotes.set("BTCUSDT", "100")
    ioc = venue.submit(order(type="limit", limit="99", tif="ioc"))
    assert ioc.status is OrderStatus.CANCELED and ioc.fills == ()
    fok = venue.submit(order(type="limit", limit="99", tif="fok"))
    assert fok.status is OrderStatus.CANCELED
    assert venue.resting() == []


def test_the_volume_cap_gives_partial_fills_and_one_order_s_volume_is_not_another_s() -> None:
    venue, _, quotes = paper_venue(volume_cap="0.1")
    quotes.set("BTCUSDT", "100", volume="30", candle_open_ms=T0)  # 3 may fill from the last candle
    first = venue.submit(order(qty="2", tif="ioc"))
    assert (first.status, first.fills[0].qty) == (OrderStatus.FILLED, D("2"))
    second = venue.submit(order(qty="2", tif="ioc"))  # 1 left of that candle's 3
    assert (second.status, second.fills[0].qty) == (OrderStatus.CANCELED, D("1"))
    assert venue.submit(order(qty="1", tif="fok")).status is OrderStatus.CANCELED  # nothing left: fok refuses
    resting = order(qty="5", tif="gtc")
    assert venue.submit(resting).status is OrderStatus.NEW  # a market order's rest waits for the next candles
    (result,) = venue.on_candle(candle("101", "102", "100", "101", volume="20", minute=1))
    assert result[1].fills[0].qty == D("2") and result[1].status is OrderStatus.PARTIALLY_FILLED


def test_resting_orders_fill_only_on_candles_that_open_after_they_arrived() -> None:
    venue, _, quotes = paper_venue()
    quotes.set("BTCUSDT", "100", ts_ms=T0 + 30_000)
    limit = order(type="limit", limit="95", ts_ms=T0 + 30_000)
    venue.submit(limit)
    assert venue.on_candle(candle("100", "100", "90", "95", minute=0)) == []  # the candle it arrived in
    ((_, report),) = venue.on_candle(candle("96", "97", "94", "95", minute=1))
    assert report.status is OrderStatus.FILLED and report.fills[0].price == D("95")
    assert report.fills[0].liquidity is Liquidity.MAKER


def test_a_stop_rests_until_a_candle_reaches_it_then_fills_as_a_market_order() -> None:
    venue, portfolio, quotes = paper_venue(slippage_bps="10")
    portfolio.position("paper", "BTCUSDT", "USDT").qty = D("3")
    quotes.set("BTCUSDT", "100")
    stop = order(side="sell", type="stop", stop="95", qty="3")
    assert venue.submit(stop).status is OrderStatus.NEW
    assert venue.on_candle(candle("99", "101", "96", "97", minute=1)) == []
    ((_, report),) = venue.on_candle(candle("94", "95", "90", "91", minute=2))  # gapped below the stop
    assert report.triggered and report.status is OrderStatus.FILLED
    assert report.fills[0].price == D("93.906")  # the open (worse than the stop) less 10 bps


def test_a_stop_limit_triggers_then_works_as_a_limit() -> None:
    venue, _, quotes = paper_venue()
    quotes.set("BTCUSDT", "100")
    buy = order(type="stop_limit", stop="105", limit="106")
    venue.submit(buy)
    ((_, triggered),) = venue.on_candle(candle("107", "110", "106.5", "108", minute=1))  # opens past the limit
    assert triggered.triggered and triggered.fills == ()
    buy.triggered = True  # what the engine records from the report
    ((_, filled),) = venue.on_candle(candle("107", "107", "105.5", "106", minute=2))
    assert filled.fills[0].price == D("106") and filled.fills[0].liquidity is Liquidity.MAKER


def test_a_day_order_expires_on_the_first_candle_past_its_session_or_by_the_clock() -> None:
    venue, _, quotes = paper_venue()
    quotes.set("BTCUSDT", "100")
    day = order(type="limit", limit="50", tif="day")
    day.expires_ms = T0 + 2 * 60_000
    venue.submit(day)
    assert venue.on_candle(candle("100", "100", "99", "100", minute=1)) == []
    ((_, report),) = venue.on_candle(candle("100", "100", "49", "100", minute=2))  # past the session: no fill
    assert report.status is OrderStatus.EXPIRED and report.fills == ()
    quiet = order(type="limit", limit="50", tif="day")
    quiet.expires_ms = T0
    venue.submit(quiet)
    assert venue.on_clock(T0 + EXPIRY_GRACE_MS - 1) == []
    ((_, expired),) = venue.on_clock(T0 + EXPIRY_GRACE_MS)
    assert expired.status is OrderStatus.EXPIRED


def test_a_resting_buy_that_gaps_past_its_funds_is_canceled_not_overdrawn() -> None:
    venue, portfolio, quotes = paper_venue()
    quotes.set("BTCUSDT", "100")
    stop = order(type="stop", stop="105", qty="90")  # reserves about 9,450 of 10,000
    venue.submit(stop)
    stop.reserved = D("9452")  # as the engine would
    portfolio.balance("paper", "USDT").reserved = D("9452")
    ((_, report),) = venue.on_candle(candle("120", "121", "119", "120", minute=1))  # 10,800 needed
    assert report.status is OrderStatus.CANCELED and "insufficient funds at fill" in (report.reason or "")
