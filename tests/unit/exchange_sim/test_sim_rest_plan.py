"""Binance's startTime / endTime / limit rules for GET /api/v3/klines."""

from __future__ import annotations

from tacore.exchange_sim.rest import plan_klines

M = 60_000
NOW = 1_767_225_600_000 + 100 * M + 30_000  # 30 s into minute 100


def test_no_times_gives_the_newest_limit_rows_ending_with_the_running_candle() -> None:
    q = plan_klines(NOW, "BTCUSDT", "1m", None, None, 5)
    assert q.first == NOW - 30_000 - 4 * M and q.closed_count == 4 and q.with_open


def test_start_time_selects_the_first_open_time_at_or_after_it() -> None:
    q = plan_klines(NOW, "BTCUSDT", "1m", NOW - 10 * M - 29_999, None, 3)
    assert q.first == NOW - 30_000 - 9 * M and q.closed_count == 3 and not q.with_open


def test_end_time_is_inclusive_of_the_candle_opening_then() -> None:
    end = NOW - 30_000 - 5 * M
    q = plan_klines(NOW, "BTCUSDT", "1m", None, end, 2)
    assert q.first == end - M and q.closed_count == 2 and not q.with_open


def test_a_span_reaching_now_includes_the_running_candle_only_once() -> None:
    q = plan_klines(NOW, "BTCUSDT", "1m", NOW - 2 * M, NOW + 10 * M, 100)
    assert q.closed_count == 1 and q.with_open


def test_a_span_in_the_future_is_empty() -> None:
    q = plan_klines(NOW, "BTCUSDT", "1m", NOW + 5 * M, None, 10)
    assert q.closed_count == 0 and not q.with_open


def test_history_starts_no_earlier_than_the_epoch() -> None:
    q = plan_klines(10 * M, "BTCUSDT", "1m", None, None, 1000)
    assert q.first == 0 and q.closed_count == 10 and q.with_open
