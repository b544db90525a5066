"""The simulated US market: bars only in NYSE sessions, pure functions of (seed, ticker, minute),
aggregates exact, realistic levels and volumes."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from tacore.exchange_sim.alpaca.bars import BarColumns, aggregate, vwap_micro
from tacore.exchange_sim.alpaca.market import UsMarket
from tacore.exchange_sim.alpaca.sessions import MINUTE_MS, TradingMinutes
from tacore.exchange_sim.alpaca.timeframes import Timeframe, Unit, parse_timeframe
from tacore.markets import calendar_named
from tacore.markets.calendar import SessionCalendar

UNIVERSE = frozenset({"AAPL", "MSFT", "NVDA", "TSLA", "GOOGL"})


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def minutes() -> TradingMinutes:
    cal = calendar_named("XNYS")
    assert isinstance(cal, SessionCalendar)
    return TradingMinutes(cal)


@pytest.fixture
def market(minutes: TradingMinutes) -> UsMarket:
    return UsMarket(7, UNIVERSE, minutes)


def tf(text: str) -> Timeframe:
    parsed = parse_timeframe(text)
    assert parsed is not None
    return parsed


NOW = ms("2024-07-10T00:00:00")  # after the sessions used below


def test_minute_bars_exist_only_inside_regular_sessions(market: UsMarket) -> None:
    bars = market.bars("AAPL", tf("1Min"), "sip", ms("2024-07-01T00:00:00"), ms("2024-07-09T00:00:00"), NOW,
                       limit=10_000)
    starts = bars.start
    assert market.minutes.minute_mask(starts // MINUTE_MS).all()
    days = {datetime.fromtimestamp(t / 1000, UTC).date().isoformat() for t in starts.tolist()}
    assert "2024-07-04" not in days and "2024-07-06" not in days  # Independence Day, a Saturday
    per_day = {d: int(np.sum([datetime.fromtimestamp(t / 1000, UTC).date().isoformat() == d
                              for t in starts.tolist()])) for d in days}
    assert per_day["2024-07-01"] == 390 and per_day["2024-07-03"] == 210  # 13:00 early close
    assert datetime.fromtimestamp(int(starts[0]) / 1000, UTC).strftime("%H:%M") == "13:30"  # 09:30 New York


def test_bars_are_a_pure_function_of_seed_ticker_and_minute(minutes: TradingMinutes) -> None:
    span = (ms("2024-07-01T00:00:00"), ms("2024-07-02T23:59:00"))
    a = UsMarket(7, UNIVERSE, minutes).bars("MSFT", tf("1Min"), "sip", *span, NOW, limit=800)
    b = UsMarket(7, UNIVERSE, minutes).bars("MSFT", tf("1Min"), "sip", *span, NOW, limit=800)
    other_seed = UsMarket(8, UNIVERSE, minutes).bars("MSFT", tf("1Min"), "sip", *span, NOW, limit=800)
    for field in ("start", "open", "high", "low", "close", "volume", "trades", "value"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert not np.array_equal(a.close, other_seed.close)
    # one minute asked alone equals the same minute inside a long range
    one = UsMarket(7, UNIVERSE, minutes).minute_bar("MSFT", "sip", int(a.start[500]) // MINUTE_MS)
    assert int(one.close[0]) == int(a.close[500]) and int(one.value[0]) == int(a.value[500])


@pytest.mark.parametrize("timeframe", ["5Min", "15Min", "30Min", "1Hour", "4Hour", "7Min", "2H", "1Day"])
def test_every_timeframe_is_the_exact_aggregate_of_its_minutes(market: UsMarket, timeframe: str) -> None:
    start, end = ms("2024-07-01T00:00:00"), ms("2024-07-05T23:59:00")
    minutes = market.bars("NVDA", tf("1Min"), "iex", start, end, NOW, limit=10_000)
    bars = market.bars("NVDA", tf(timeframe), "iex", start, end, NOW, limit=10_000)
    step = tf(timeframe).step_ms if tf(timeframe).intraday else None
    if step is None:
        sessions = np.array([market.minutes.session_of_minute(int(t) // MINUTE_MS) for t in minutes.start])
        key = market.minutes.ny_midnight_ms[sessions]
    else:
        day = minutes.start - minutes.start % 86_400_000
        key = day + (minutes.start - day) // step * step
    expected = aggregate(minutes, key)
    for field in ("start", "open", "high", "low", "close", "volume", "trades", "value"):
        assert np.array_equal(getattr(bars, field), getattr(expected, field)), field


def test_a_running_bucket_holds_only_the_minutes_closed_so_far(market: UsMarket) -> None:
    now = ms("2024-07-02T14:07:30")  # 10:07:30 New York: minutes 13:30 .. 14:06 closed
    hour = market.bars("AAPL", tf("1Hour"), "sip", ms("2024-07-02T14:00:00"), now, now, limit=5)
    mins = market.bars("AAPL", tf("1Min"), "sip", ms("2024-07-02T14:00:00"), now, now, limit=100)
    assert len(mins) == 7 and len(hour) == 1
    assert int(hour.volume[0]) == int(mins.volume.sum()) and int(hour.close[0]) == int(mins.close[-1])
    day = market.bars("AAPL", tf("1Day"), "sip", ms("2024-07-02T00:00:00"), now, now, limit=5)
    assert int(day.volume[0]) == int(market.day_so_far("AAPL", "sip", now // MINUTE_MS - 1).volume[0])
    assert int(market.latest_minute("AAPL", "sip", now).start[0]) == ms("2024-07-02T14:06:00")


def test_descending_order_returns_the_newest_bars_first(market: UsMarket) -> None:
    asc = market.bars("TSLA", tf("15Min"), "sip", ms("2024-06-01T00:00:00"), NOW, NOW, limit=10_000)
    desc = market.bars("TSLA", tf("15Min"), "sip", ms("2024-06-01T00:00:00"), NOW, NOW, descending=True, limit=30)
    assert desc.start.tolist() == asc.start[::-1][:30].tolist()


def test_week_and_month_bars_group_sessions(market: UsMarket) -> None:
    weeks = market.bars("GOOGL", tf("1Week"), "sip", ms("2024-06-01T00:00:00"), NOW, NOW, limit=10)
    days = market.bars("GOOGL", tf("1Day"), "sip", ms("2024-07-01T00:00:00"), ms("2024-07-06T00:00:00"), NOW)
    week = weeks.take(np.flatnonzero(weeks.start == days.start[0]))
    assert int(week.volume[0]) == int(days.volume.sum()) and int(week.high[0]) == int(days.high.max())
    months = market.bars("GOOGL", tf("1Month"), "sip", ms("2024-01-01T00:00:00"), NOW, NOW)
    assert len(months) == 7  # January .. July (running)
    year = market.bars("NVDA", tf("12Month"), "sip", ms("2020-01-01T00:00:00"), NOW, NOW)
    assert [datetime.fromtimestamp(t / 1000, UTC).year for t in year.start.tolist()] == [2020, 2021, 2022, 2023,
                                                                                         2024]
    assert all(int(v) > 2**63 // 20 for v in year.value[:-1])  # exact Python integers, no int64 overflow


def test_price_levels_and_volumes_are_realistic(market: UsMarket) -> None:
    days = market.bars("AAPL", tf("1Day"), "sip", ms("2023-07-01T00:00:00"), NOW, NOW, limit=300)
    closes = days.close / 100.0
    assert closes.min() > 120 and closes.max() < 340  # around AAPL's ~230
    assert 30e6 < float(np.median(days.volume)) < 80e6  # tens of millions of shares a day
    daily_vol = float(np.std(np.diff(np.log(closes))))
    assert 0.005 < daily_vol < 0.03
    iex = market.bars("AAPL", tf("1Day"), "iex", ms("2024-07-01T00:00:00"), NOW, NOW)
    sip = market.bars("AAPL", tf("1Day"), "sip", ms("2024-07-01T00:00:00"), NOW, NOW)
    assert np.array_equal(iex.close, sip.close)
    assert 0.01 < float(iex.volume.sum() / sip.volume.sum()) < 0.06  # IEX: a few percent of the tape
    minutes = market.bars("AAPL", tf("1Min"), "sip", ms("2024-07-01T00:00:00"), ms("2024-07-01T23:00:00"), NOW)
    assert minutes.volume[:10].mean() > 2 * minutes.volume[150:250].mean()  # heavy at the open
    for row in range(len(minutes)):
        vw = vwap_micro(int(minutes.value[row]), int(minutes.volume[row]))
        assert minutes.low[row] * 10_000 <= vw <= minutes.high[row] * 10_000


def test_timeframe_spellings() -> None:
    assert parse_timeframe("1Min") == Timeframe(1, Unit.MINUTE) == parse_timeframe("1T")
    assert parse_timeframe("59Min") == Timeframe(59, Unit.MINUTE)
    assert parse_timeframe("4Hour") == parse_timeframe("4H") == Timeframe(4, Unit.HOUR)
    assert parse_timeframe("1Day") == parse_timeframe("1D") and parse_timeframe("1W") == Timeframe(1, Unit.WEEK)
    assert parse_timeframe("3M") == parse_timeframe("3Month") == Timeframe(3, Unit.MONTH)
    for bad in ("60Min", "0Min", "24Hour", "2Day", "2Week", "5Month", "1min", "Min", "1Minute", "", "1 Min"):
        assert parse_timeframe(bad) is None, bad
    assert str(Timeframe(15, Unit.MINUTE)) == "15Min"
    assert Timeframe(4, Unit.HOUR).bucket_ms(ms("2024-07-01T15:59:00")) == ms("2024-07-01T12:00:00")


def test_session_lookups(minutes: TradingMinutes) -> None:
    m = ms("2024-07-03T16:59:00") // MINUTE_MS  # the early close's last minute
    s = minutes.session_of_minute(m)
    assert s >= 0 and minutes.session_of_minute(m + 1) == -1
    july5 = ms("2024-07-05T13:30:00") // MINUTE_MS
    assert minutes.trading_index(july5) == minutes.trading_index(m) + 1  # the walk skips nights and holidays
    assert minutes.first_session_ending_after(ms("2024-07-04T12:00:00")) == s + 1
    assert minutes.last_session_opened_by(ms("2024-07-04T12:00:00")) == s
    assert minutes.ny_midnight_ms[s] == ms("2024-07-03T04:00:00") and minutes.utc_day_ms[s] == ms("2024-07-03T00:00:00")
    winter = minutes.session_of_minute(ms("2024-01-02T15:00:00") // MINUTE_MS)
    assert minutes.ny_midnight_ms[winter] == ms("2024-01-02T05:00:00")


def test_aggregate_is_exact_on_integers() -> None:
    z = np.array
    bars = BarColumns(z([0, 1, 2, 3]), z([10, 11, 12, 13]), z([15, 16, 17, 14]), z([9, 8, 11, 12]), z([11, 12, 13, 12]),
                      z([5, 6, 7, 8]), z([1, 1, 2, 3]), z([50, 66, 91, 96]))
    agg = aggregate(bars, z([0, 0, 2, 2]))
    assert agg.start.tolist() == [0, 2] and agg.open.tolist() == [10, 12] and agg.close.tolist() == [12, 12]
    assert agg.high.tolist() == [16, 17] and agg.low.tolist() == [8, 11] and agg.volume.tolist() == [11, 15]
    assert agg.trades.tolist() == [2, 5] and agg.value.tolist() == [116, 187]
    assert vwap_micro(187, 15) == 12  # 12.47 rounds down; half rounds up
    assert vwap_micro(15, 2) == 8
