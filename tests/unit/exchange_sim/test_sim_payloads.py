"""Binance wire formats: decimals, kline events, combined wrapping, REST rows, error bodies."""

from __future__ import annotations

import json

from tacore.exchange_sim.candle import Candle, fmt_units
from tacore.exchange_sim.feed import text_frame
from tacore.exchange_sim.payloads import (
    candle_record,
    combined,
    kline_body,
    kline_event,
    rest_error,
    rest_row,
    server_shutdown_event,
    ws_error,
    ws_result,
)

CANDLE = Candle(
    open_time=1_767_225_600_000,
    close_time=1_767_225_659_999,
    open=6_500_012_000_000,
    high=6_501_000_000_000,
    low=6_499_000_000_000,
    close=6_500_500_000_000,
    volume=123_456_789,
    quote_volume=8_024_691_285_000_000,
    trades=42,
    taker_base=60_000_000,
    taker_quote=3_900_000_000_000_000,
    first_trade_id=100,
    last_trade_id=141,
)


def test_units_format_with_exactly_eight_decimals() -> None:
    assert fmt_units(1_000_000) == "0.01000000"
    assert fmt_units(0) == "0.00000000"
    assert fmt_units(6_500_012_000_000) == "65000.12000000"
    assert fmt_units(1) == "0.00000001"
    assert fmt_units(-150_000_000) == "-1.50000000"


def test_kline_event_matches_binance_field_order_and_types() -> None:
    text = kline_event("BTCUSDT", 1_767_225_630_123, kline_body("BTCUSDT", "1m", CANDLE, False))
    event = json.loads(text)
    assert event == {
        "e": "kline",
        "E": 1_767_225_630_123,
        "s": "BTCUSDT",
        "k": {
            "t": 1_767_225_600_000,
            "T": 1_767_225_659_999,
            "s": "BTCUSDT",
            "i": "1m",
            "f": 100,
            "L": 141,
            "o": "65000.12000000",
            "c": "65005.00000000",
            "h": "65010.00000000",
            "l": "64990.00000000",
            "v": "1.23456789",
            "n": 42,
            "x": False,
            "q": "80246912.85000000",
            "V": "0.60000000",
            "Q": "39000000.00000000",
            "B": "0",
        },
    }
    assert list(event["k"]) == list("tTsifLochlvnxqVQB")
    assert json.loads(kline_body("BTCUSDT", "1m", CANDLE, True))["x"] is True


def test_combined_payload_wraps_the_raw_event_under_its_stream_name() -> None:
    raw = kline_event("BTCUSDT", 1, kline_body("BTCUSDT", "1m", CANDLE, True))
    wrapped = json.loads(combined("btcusdt@kline_1m", raw))
    assert list(wrapped) == ["stream", "data"]
    assert wrapped["stream"] == "btcusdt@kline_1m" and wrapped["data"] == json.loads(raw)


def test_rest_row_is_binances_twelve_field_array() -> None:
    assert rest_row(CANDLE) == [
        1_767_225_600_000,
        "65000.12000000",
        "65010.00000000",
        "64990.00000000",
        "65005.00000000",
        "1.23456789",
        1_767_225_659_999,
        "80246912.85000000",
        42,
        "0.60000000",
        "39000000.00000000",
        "0",
    ]


def test_candle_record_uses_the_kline_history_shape() -> None:
    record = candle_record("BTCUSDT", "1m", CANDLE, True)
    assert record["open_time"] == CANDLE.open_time and record["close"] == "65005.00000000"
    assert record["taker_buy_base_volume"] == "0.60000000" and record["closed"] is True


def test_replies_and_errors_have_binance_shapes() -> None:
    assert json.loads(ws_result(None, 1)) == {"result": None, "id": 1}
    assert json.loads(ws_result(["a@kline_1m"], "x1")) == {"result": ["a@kline_1m"], "id": "x1"}
    assert json.loads(ws_error(2, "Invalid request: invalid stream", 4)) == {
        "error": {"code": 2, "msg": "Invalid request: invalid stream"},
        "id": 4,
    }
    assert json.loads(rest_error(-1121, "Invalid symbol.")) == {"code": -1121, "msg": "Invalid symbol."}
    assert json.loads(server_shutdown_event(5)) == {"e": "serverShutdown", "E": 5}


def test_text_frames_use_the_right_length_encoding() -> None:
    assert text_frame(b"x" * 125)[:2] == b"\x81\x7d"
    assert text_frame(b"x" * 126)[:4] == b"\x81\x7e\x00\x7e"
    assert text_frame(b"x" * 65_536)[:10] == b"\x81\x7f" + (65_536).to_bytes(8, "big")
    assert len(text_frame(b"x" * 300)) == 304
