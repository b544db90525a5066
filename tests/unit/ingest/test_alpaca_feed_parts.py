"""The US feed's pure parts: stream messages, bars -> rows, session-aware candle clocks, running
candles, market routing, the subscription file with markets, the key pair's settings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tacore.errors import InvalidParams
from tacore.markets import MarketSource, calendar_named, load_markets
from tacore.settings import load_settings
from tacore.store.klines import CLOSED_VERSION
from workers.ingest.alpaca.bars import BarError, bar_row, parse_time_ms
from workers.ingest.alpaca.candles import RunningCandles
from workers.ingest.alpaca.config import MISSING_KEYS, alpaca_access, history_depth_of
from workers.ingest.alpaca.messages import BarPoint, StreamError, Subscription, Success, parse_frame
from workers.ingest.alpaca.sessions import UsCandleClock
from workers.ingest.routing import MarketRouter
from workers.ingest.subscriptions import SubscriptionFile


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def clock() -> UsCandleClock:
    return UsCandleClock(lambda: calendar_named("XNYS"))


BAR = {"t": "2024-07-02T14:04:00Z", "o": 198.3, "h": 198.64, "l": 198.17, "c": 198.54, "v": 3942, "n": 45,
       "vw": 198.406891}


def test_stream_frames_parse_into_control_messages_and_bars() -> None:
    assert parse_frame('[{"T":"success","msg":"connected"}]').messages == [Success("connected")]
    assert parse_frame('[{"T":"error","code":402,"msg":"auth failed"}]').messages == [StreamError(402, "auth failed")]
    sub = parse_frame('[{"T":"subscription","trades":[],"bars":["AAPL","MSFT"],"dailyBars":[]}]').messages[0]
    assert isinstance(sub, Subscription) and sub.channels["bars"] == ["AAPL", "MSFT"]
    data = parse_frame('[{"T":"b","S":"AAPL","t":"2024-07-02T14:04:00Z","o":1,"h":1,"l":1,"c":1,"v":1},'
                       '{"T":"q","S":"AAPL"},{"T":"u","S":"MSFT","t":"2024-07-02T14:03:00Z"},{"T":"b"},7]')
    assert [(m.kind, m.symbol) for m in data.messages if isinstance(m, BarPoint)] == [("b", "AAPL"), ("u", "MSFT")]
    assert data.skipped == 3  # a quote (not kept), a bar without a symbol, a number
    assert parse_frame("not json").malformed and parse_frame('"text"').malformed
    assert parse_frame('{"T":"success","msg":"authenticated"}').messages == [Success("authenticated")]


def test_bars_become_candle_rows_with_tacores_open_times() -> None:
    row = bar_row("AAPL", "1m", BAR, closed=True, event_time=ms("2024-07-02T14:05:00"))
    assert (row.open_time, row.close_time) == (ms("2024-07-02T14:04:00"), ms("2024-07-02T14:05:00") - 1)
    assert (row.open, row.high, row.low, row.close, row.volume, row.trades) == (198.3, 198.64, 198.17, 198.54,
                                                                                3942.0, 45)
    assert row.quote_volume == 3942.0 * 198.406891 and row.taker_buy_base_volume == 0.0
    assert row.version == CLOSED_VERSION + ms("2024-07-02T14:05:00")
    day = bar_row("AAPL", "1d", {**BAR, "t": "2024-07-02T04:00:00Z"}, closed=False, event_time=1)
    assert day.open_time == ms("2024-07-02T00:00:00") and day.version == 1  # New York midnight -> UTC midnight
    winter = bar_row("AAPL", "1d", {**BAR, "t": "2024-01-02T05:00:00Z"}, closed=True, event_time=1)
    assert winter.open_time == ms("2024-01-02T00:00:00")
    assert parse_time_ms("2024-01-02T09:30:00.123456789-05:00") == ms("2024-01-02T14:30:00") + 123
    with pytest.raises(BarError):
        bar_row("AAPL", "1m", {"t": "2024-07-02T14:04:00Z"}, closed=True, event_time=1)
    with pytest.raises(BarError):
        parse_time_ms("2024-07-02T14:04:00")  # no zone


def test_us_candles_close_with_their_interval_or_their_session(clock: UsCandleClock) -> None:
    assert clock.close_ms(ms("2024-07-02T13:00:00"), "1h") == ms("2024-07-02T14:00:00")
    assert clock.close_ms(ms("2024-07-02T19:00:00"), "1h") == ms("2024-07-02T20:00:00")
    assert clock.close_ms(ms("2024-07-02T16:00:00"), "4h") == ms("2024-07-02T20:00:00")
    assert clock.close_ms(ms("2024-07-02T00:00:00"), "1d") == ms("2024-07-02T20:00:00")  # 16:00 New York
    assert clock.close_ms(ms("2024-07-03T16:00:00"), "4h") == ms("2024-07-03T17:00:00")  # 13:00 early close
    assert clock.close_ms(ms("2024-01-02T20:00:00"), "4h") == ms("2024-01-02T21:00:00")  # winter: 21:00Z
    assert clock.is_closed(ms("2024-07-02T00:00:00"), "1d", ms("2024-07-02T20:00:00"))
    assert not clock.is_closed(ms("2024-07-02T00:00:00"), "1d", ms("2024-07-02T19:59:59"))


def test_previous_session_minute_and_history_windows(clock: UsCandleClock) -> None:
    assert clock.previous_minute(ms("2024-07-02T14:05:00")) == ms("2024-07-02T14:04:00")
    assert clock.previous_minute(ms("2024-07-05T13:30:00")) == ms("2024-07-03T16:59:00")  # over the holiday
    now = ms("2024-07-02T15:00:30")  # the candles before the running one count
    assert clock.window_start("1m", 90, now) == ms("2024-07-02T13:30:00")  # 13:30 .. 14:59
    assert clock.window_start("1m", 91, now) == ms("2024-07-01T19:59:00")  # and the last minute before
    assert clock.window_start("1h", 2, now) == ms("2024-07-02T13:00:00")  # 13:00 (half an hour), 14:00
    assert clock.window_start("1h", 3, now) == ms("2024-07-01T19:00:00")
    assert clock.window_start("1h", 2, ms("2024-07-02T15:30:00")) == ms("2024-07-02T13:00:00")
    assert clock.window_start("1d", 3, now) == ms("2024-06-27T00:00:00")  # Jun 27, Jun 28, Jul 1
    assert clock.window_start("4h", 3, now) == ms("2024-06-28T16:00:00")  # Jun 28 16:00, Jul 1 12:00, 16:00
    assert clock.window_start("1d", 2, ms("2024-07-06T12:00:00")) == ms("2024-07-03T00:00:00")  # Jul 3, 5
    assert clock.session_start(ms("2024-07-04T12:00:00")) == ms("2024-07-03T13:30:00")


def test_running_candles_merge_minutes_once_and_collect_every_ended_bucket(clock: UsCandleClock) -> None:
    running = RunningCandles(clock)
    first = running.add_minute("AAPL", "5m", ms("2024-07-02T14:05:00"), {**BAR, "o": 10, "h": 12, "l": 9, "c": 11,
                                                                         "v": 100, "n": 2, "vw": 10.5})
    assert first is not None and not first.closed and first.open_time == ms("2024-07-02T14:05:00")
    assert running.add_minute("AAPL", "5m", ms("2024-07-02T14:05:00"), BAR) is None  # counted already
    second = running.add_minute("AAPL", "5m", ms("2024-07-02T14:06:00"), {**BAR, "o": 11, "h": 13, "l": 10, "c": 12,
                                                                          "v": 50, "n": 1, "vw": 12.0})
    assert second is not None
    assert (second.open, second.high, second.low, second.close, second.volume, second.trades) == (10, 13, 9, 12,
                                                                                                  150, 3)
    assert second.quote_volume == 100 * 10.5 + 50 * 12.0 and second.event_time == ms("2024-07-02T14:07:00")
    assert list(running.due(ms("2024-07-02T14:09:59"))) == []
    # a minute of the next bucket arrives before the close was collected: the old bucket is still due
    running.add_minute("AAPL", "5m", ms("2024-07-02T14:10:00"), BAR)
    ended = list(running.due(ms("2024-07-02T14:11:00")))
    assert [(e.symbol, e.interval, e.open_time) for e in ended] == [("AAPL", "5m", ms("2024-07-02T14:05:00"))]
    closed = ended[0].closed_row()  # what the feed stores when Alpaca has no aggregate for the bucket
    assert closed.closed and closed.volume == 150 and closed.event_time == ms("2024-07-02T14:10:00")
    assert closed.version == CLOSED_VERSION + ms("2024-07-02T14:10:00")
    later = list(running.due(ms("2024-07-02T14:15:00")))
    assert [(e.symbol, e.open_time) for e in later] == [("AAPL", ms("2024-07-02T14:10:00"))]
    # a REST bar that already holds minutes up to 14:22 is not counted twice
    seed = bar_row("MSFT", "15m", {**BAR, "t": "2024-07-02T14:15:00Z", "v": 1000}, closed=False, event_time=1)
    running.seed(seed, ms("2024-07-02T14:22:00"))
    assert running.add_minute("MSFT", "15m", ms("2024-07-02T14:22:00"), BAR) is None
    later = running.add_minute("MSFT", "15m", ms("2024-07-02T14:23:00"), {**BAR, "v": 1})
    assert later is not None and later.volume == 1001
    running.forget_if("MSFT", "15m", ms("2024-07-02T14:15:00"))  # its closed candle arrived
    assert len(running) == 0


def test_symbols_go_to_their_markets_feed_and_unknown_ones_are_invalid_params() -> None:
    router = MarketRouter(load_markets(None))
    routed = router.split([("AAPL", "1m"), ("BTCUSDT", "1m"), ("BRK.B", "1d"), ("V", "1h")])
    assert routed[MarketSource.ALPACA] == [("AAPL", "1m"), ("BRK.B", "1d"), ("V", "1h")]
    assert routed[MarketSource.BINANCE] == [("BTCUSDT", "1m")]
    with pytest.raises(InvalidParams) as err:
        router.split([("AAPL", "1m"), ("ABCDEFG", "1m"), ("XY_Z", "1m")])
    assert [d["symbol"] for d in err.value.details] == ["ABCDEFG", "XY_Z"]
    with pytest.raises(InvalidParams) as err:
        router.split([("AAPL", "1m")], "MOON")
    assert err.value.details[0]["known"] == ["CRYPTO", "US"]
    forced = router.split([("ABCDEFG", "1m")], "us")  # a forced market is remembered
    assert forced[MarketSource.ALPACA] == [("ABCDEFG", "1m")] and router.name_of("ABCDEFG") == "US"


def test_replies_group_symbols_by_market_and_one_of_no_market_under_a_question_mark() -> None:
    router = MarketRouter(load_markets(None))
    assert router.by_market(["BTCUSDT", "AAPL", "XY_Z", "ETHUSDT"]) == {
        "CRYPTO": ["BTCUSDT", "ETHUSDT"], "US": ["AAPL"], "?": ["XY_Z"]}


def test_the_subscription_file_keeps_each_streams_market(tmp_path: Path) -> None:
    file = SubscriptionFile(tmp_path / "subs.json")
    file.save([("AAPL", "1m", "US"), ("BTCUSDT", "1h", "CRYPTO"), ("ETHUSDT", "1m", None)])
    assert file.load() == [("AAPL", "1m"), ("BTCUSDT", "1h"), ("ETHUSDT", "1m")]
    assert file.markets() == {"AAPL": "US", "BTCUSDT": "CRYPTO"}
    (tmp_path / "old.json").write_text('{"streams": [["BTCUSDT", "1m"], ["BAD SYMBOL", "1m"], ["AAPL", "1m", 3]]}')
    assert SubscriptionFile(tmp_path / "old.json").load_entries() == [("BTCUSDT", "1m", None)]
    router = MarketRouter(load_markets(None), {"ABCDEFG": "US", "X": "MOON"})
    assert router.remembered == {"ABCDEFG": "US"}  # a market no longer declared is forgotten


def test_alpaca_keys_come_from_settings_and_the_secret_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ALPACA_API_KEY_ID", "ALPACA_API_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert alpaca_access(load_settings()) is None and "ALPACA_API_KEY_ID" in MISSING_KEYS
    assert alpaca_access(load_settings(alpaca_api_key_id="K")) is None  # half a key pair is no key pair
    settings = load_settings(alpaca_api_key_id="K", alpaca_api_secret_key="S3CR3T", alpaca_feed="sip",
                             alpaca_stream_url="ws://127.0.0.1:9/")
    access = alpaca_access(settings)
    assert access is not None and access.secret_key == "S3CR3T"
    assert access.stream_endpoint == "ws://127.0.0.1:9/v2/sip"
    assert "S3CR3T" not in repr(access) and "S3CR3T" not in repr(settings) and "S3CR3T" not in str(settings)
    assert history_depth_of(settings)("1m") == 1000
