"""Interval math, symbol listing and stream-name parsing."""

from __future__ import annotations

import itertools

import pytest

from tacore.exchange_sim.intervals import (
    INTERVAL_MS,
    close_time_of,
    kline_stream,
    open_time_of,
    parse_stream,
    symbol_is_listed,
)


@pytest.mark.parametrize(
    ("ts", "interval", "expected"),
    [
        (1_767_225_600_000, "1m", 1_767_225_600_000),
        (1_767_225_659_999, "1m", 1_767_225_600_000),
        (1_767_225_660_000, "1m", 1_767_225_660_000),
        (1_767_226_199_999, "15m", 1_767_225_600_000),
        (1_767_311_999_999, "1d", 1_767_225_600_000),
        (1_767_240_000_001, "4h", 1_767_240_000_000),
    ],
)
def test_open_time_is_the_utc_aligned_start_of_the_containing_candle(ts: int, interval: str, expected: int) -> None:
    assert open_time_of(ts, interval) == expected


def test_close_time_is_the_last_millisecond_of_the_candle() -> None:
    for interval, step in INTERVAL_MS.items():
        assert close_time_of(0, interval) == step - 1


def test_each_interval_nests_in_whole_candles_of_the_next() -> None:
    steps = list(INTERVAL_MS.values())
    assert all(b % a == 0 for a, b in itertools.pairwise(steps))


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHBTC", "BNBETH", "SOLBNB", "USDCFDUSD", "1000PEPEUSDT"])
def test_well_formed_symbols_with_a_known_quote_are_listed(symbol: str) -> None:
    assert symbol_is_listed(symbol, None)


@pytest.mark.parametrize("symbol", ["BTCUSD", "btcusdt", "BTC-USDT", "USDT", "A" * 21 + "USDT", ""])
def test_other_symbols_are_not_listed(symbol: str) -> None:
    assert not symbol_is_listed(symbol, None)


def test_a_whitelist_replaces_the_pattern() -> None:
    assert symbol_is_listed("BTCUSDT", frozenset({"BTCUSDT"}))
    assert not symbol_is_listed("ETHUSDT", frozenset({"BTCUSDT"}))


def test_kline_stream_names_parse_to_symbol_and_interval() -> None:
    parsed = parse_stream("btcusdt@kline_1m")
    assert parsed is not None and (parsed.symbol, parsed.interval) == ("BTCUSDT", "1m")
    assert kline_stream("BTCUSDT", "4h") == "btcusdt@kline_4h"


def test_valid_binance_streams_without_simulated_data_parse_with_no_interval() -> None:
    for name in ("btcusdt@kline_3m", "btcusdt@trade", "btcusdt@depth20@100ms", "!miniTicker@arr"):
        parsed = parse_stream(name)
        assert parsed is not None and parsed.interval is None, name


@pytest.mark.parametrize("name", ["BTCUSDT@kline_1m", "btcusdt@kline_7m", "btcusdt", "btc usdt@trade", "", "@kline_1m"])
def test_malformed_stream_names_are_invalid(name: str) -> None:
    assert parse_stream(name) is None
