"""Payload normalisation: Binance's documented kline event and REST row -> one row shape (floats)."""

from __future__ import annotations

import pytest

from tacore.intervals import INTERVALS
from tacore.store.klines import CANDLE_FIELDS, CLOSED_VERSION, candle_dict, version_of
from workers.ingest.normalise import (
    PayloadError,
    kline_row,
    parse_stream_name,
    rest_row,
    stream_name,
)

# The example from Binance's "Kline/Candlestick Streams" documentation.
BINANCE_EVENT = {
    "e": "kline", "E": 1672515782136, "s": "BNBBTC",
    "k": {"t": 1672515780000, "T": 1672515839999, "s": "BNBBTC", "i": "1m", "f": 100, "L": 200,
          "o": "0.0010", "c": "0.0020", "h": "0.0025", "l": "0.0015", "v": "1000", "n": 100, "x": False,
          "q": "1.0000", "V": "500", "Q": "0.500", "B": "123456"},
}
# The example row from Binance's "Kline/Candlestick data" REST documentation.
BINANCE_REST_ROW = [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100", "148976.11427815",
                    1499644799999, "2434.19055334", 308, "1756.87402397", "28.46694368", "0"]


def test_ws_event_becomes_a_row_with_float_prices_and_ms_times() -> None:
    row = kline_row(BINANCE_EVENT)
    assert (row.symbol, row.interval, row.open_time, row.close_time) == ("BNBBTC", "1m", 1672515780000, 1672515839999)
    assert (row.open, row.high, row.low, row.close) == (0.001, 0.0025, 0.0015, 0.002)
    assert (row.volume, row.quote_volume, row.trades) == (1000.0, 1.0, 100)
    assert (row.taker_buy_base_volume, row.taker_buy_quote_volume) == (500.0, 0.5)
    assert row.closed is False and row.event_time == 1672515782136
    assert row.version == 1672515782136
    assert all(isinstance(v, float) for v in (row.open, row.high, row.low, row.close, row.volume))


def test_closed_version_outranks_any_open_update() -> None:
    closed = kline_row({**BINANCE_EVENT, "k": {**BINANCE_EVENT["k"], "x": True}})
    later_open = kline_row({**BINANCE_EVENT, "E": BINANCE_EVENT["E"] + 10**9})
    assert closed.version == CLOSED_VERSION + closed.event_time
    assert closed.version > later_open.version
    assert version_of(True, 0) > version_of(False, 2**61)


def test_rest_row_matches_the_exchange_decimal_strings_exactly() -> None:
    row = rest_row("BNBBTC", "1d", BINANCE_REST_ROW, closed=True)
    assert row.open_time == 1499040000000 and row.close_time == 1499644799999
    assert row.open == float("0.01634790") and row.volume == float("148976.11427815")
    assert row.quote_volume == float("2434.19055334") and row.trades == 308
    assert row.taker_buy_quote_volume == float("28.46694368")
    assert row.closed and row.version == CLOSED_VERSION + row.close_time


def test_candle_dict_has_exactly_the_documented_fields() -> None:
    candle = candle_dict(kline_row(BINANCE_EVENT))
    assert tuple(candle) == CANDLE_FIELDS
    assert candle["closed"] is False and candle["close"] == 0.002


@pytest.mark.parametrize("payload", [
    {}, {"E": 1}, {"E": 1, "k": {}}, {"E": "x", "k": BINANCE_EVENT["k"]},
    {**BINANCE_EVENT, "k": {**BINANCE_EVENT["k"], "o": "abc"}}, {**BINANCE_EVENT, "k": None},
])
def test_malformed_payload_is_a_payload_error(payload: dict[str, object]) -> None:
    with pytest.raises(PayloadError):
        kline_row(payload)


def test_malformed_rest_row_is_a_payload_error() -> None:
    with pytest.raises(PayloadError):
        rest_row("BNBBTC", "1m", BINANCE_REST_ROW[:5], closed=True)


def test_stream_names_round_trip_for_every_interval() -> None:
    for interval in INTERVALS:
        name = stream_name("BTCUSDT", interval)
        assert name == f"btcusdt@kline_{interval}"
        assert parse_stream_name(name) == ("BTCUSDT", interval)
    for bad in ("btcusdt@trade", "btcusdt@kline_2h", "@kline_1m", "btcusdt"):
        with pytest.raises(PayloadError):
            parse_stream_name(bad)
