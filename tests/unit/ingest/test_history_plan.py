"""History depth planning: a new stream fetches its whole depth up to where the live stream's backfill
takes over; a restarted one fetches only what is missing (before its oldest candle, holes inside),
never the whole depth again; depth is set per interval; session markets count candles in sessions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tacore.markets.calendar import calendar_named
from tacore.store.klines import KlineRow, KlineStore, version_of
from workers.ingest.history import (
    HistoryDepth,
    StoredSpan,
    bars_between,
    plan_history,
    plan_stream,
    plan_summary,
    resume_after,
    resume_point,
    window_start,
)

M = 60_000
ANCHOR = 1_800_000_000_000 // M * M  # open time of the running 1m candle


def test_depth_is_the_default_unless_the_interval_has_its_own() -> None:
    depth = HistoryDepth(1000, {"1m": 5000, "1d": 0})
    assert depth.of("1m") == 5000 and depth.of("5m") == 1000 and depth.of("1d") == 0
    assert depth.as_dict()["4h"] == 1000
    with pytest.raises(ValueError):
        HistoryDepth(1000, {"2m": 5})
    with pytest.raises(ValueError):
        HistoryDepth(-1)


def test_a_new_stream_fetches_its_depth_and_the_live_backfill_resumes_at_the_anchor() -> None:
    plan = plan_stream("BTCUSDT", "1m", 500, ANCHOR, StoredSpan())
    assert plan.fetch == ((ANCHOR - 500 * M, ANCHOR - M),)
    assert plan.resume_after == ANCHOR - M  # the live stream's backfill fetches from the anchor on
    assert plan.wanted == 500


def test_a_stream_that_holds_its_depth_fetches_nothing_and_resumes_after_its_newest_candle() -> None:
    span = StoredSpan(oldest=ANCHOR - 500 * M, count=480, newest=ANCHOR - 20 * M, newest_closed=ANCHOR - 21 * M)
    plan = plan_stream("BTCUSDT", "1m", 500, ANCHOR, span)
    assert plan.fetch == ()
    assert plan.resume_after == ANCHOR - 21 * M  # the candle still open at the stop closed meanwhile
    assert plan.wanted == 20  # only the time the agent was away


def test_a_fetch_cut_short_by_a_restart_continues_before_the_oldest_candle_only() -> None:
    # newest pages first: the first run stored [ANCHOR-300, ANCHOR-1] and stopped
    span = StoredSpan(oldest=ANCHOR - 300 * M, count=300, newest=ANCHOR - M, newest_closed=ANCHOR - M)
    plan = plan_stream("BTCUSDT", "1m", 500, ANCHOR, span)
    assert plan.fetch == ((ANCHOR - 500 * M, ANCHOR - 301 * M),)
    assert plan.wanted == 200


def test_holes_are_fetched_where_the_market_never_closes_and_left_alone_in_session_markets() -> None:
    holes = ((ANCHOR - 400 * M, ANCHOR - 390 * M), (ANCHOR - 100 * M, ANCHOR - 98 * M))
    span = StoredSpan(oldest=ANCHOR - 500 * M, count=489, holes=holes, newest=ANCHOR - M, newest_closed=ANCHOR - M)
    plan = plan_stream("BTCUSDT", "1m", 500, ANCHOR, span)
    assert plan.fetch == ((ANCHOR - 99 * M, ANCHOR - 99 * M), (ANCHOR - 399 * M, ANCHOR - 391 * M))
    assert plan.wanted == 10
    stock = plan_stream("AAPL", "1m", 500, ANCHOR, span, calendar_named("XNYS"))
    assert all(first < ANCHOR - 500 * M for first, _ in stock.fetch), "overnight is not a hole"


def test_the_resume_point_is_the_newest_closed_candle_or_the_one_before_an_open_one() -> None:
    assert resume_point(StoredSpan(newest=600_000, newest_closed=540_000), 60_000) == 540_000
    assert resume_point(StoredSpan(newest=900_000, newest_closed=300_000), 300_000) == 600_000
    assert resume_point(StoredSpan(newest=900_000, newest_closed=None), 900_000) == 0
    assert resume_point(StoredSpan(), 60_000) is None
    plans = [plan_stream("A", "1m", 5, ANCHOR, StoredSpan()), plan_stream("B", "1m", 0, ANCHOR, StoredSpan())]
    assert resume_after(plans) == {("A", "1m"): ANCHOR - M}


def test_depth_zero_fetches_no_history_and_keeps_todays_resume() -> None:
    assert plan_stream("BTCUSDT", "1m", 0, ANCHOR, StoredSpan()).fetch == ()
    assert plan_stream("BTCUSDT", "1m", 0, ANCHOR, StoredSpan()).resume_after is None
    span = StoredSpan(oldest=ANCHOR - 5 * M, count=5, newest=ANCHOR - M, newest_closed=ANCHOR - M)
    assert plan_stream("BTCUSDT", "1m", 0, ANCHOR, span).resume_after == ANCHOR - M


def test_session_markets_count_depth_in_candles_of_their_sessions() -> None:
    nyse = calendar_named("XNYS")
    monday = int(datetime(2026, 11, 30, 15, 0, tzinfo=UTC).timestamp() * 1000)
    start = window_start(nyse, "1m", 1000, monday)
    assert bars_between(nyse, "1m", start, monday - M) == 1000
    assert monday - start > 2 * 86_400_000, "1,000 minutes of NYSE sessions span more than a weekend"
    assert bars_between(nyse, "1h", window_start(nyse, "1h", 70, monday), monday - 3_600_000) == 70
    assert window_start(calendar_named("24/7"), "1h", 10, monday) == monday - 10 * 3_600_000


def rows(symbol: str, interval: str, opens: list[int]) -> list[KlineRow]:
    step = {"1m": M, "5m": 5 * M}[interval]
    return [KlineRow(symbol, interval, t, t + step - 1, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1, 0.0, 0.0, True,
                     t + step - 1, version_of(True, t + step - 1)) for t in opens]


def test_plans_from_a_real_store_fetch_only_what_is_missing(tmp_path: Path) -> None:
    store = KlineStore(f"chdb://{tmp_path}/klines")
    store.open()
    try:
        stored = [ANCHOR - k * M for k in range(1, 301) if k not in (50, 51)]  # 300 minutes but a 2-minute hole
        store.insert(rows("BTCUSDT", "1m", stored))
        store.insert(rows("OLDUSDT", "1m", [ANCHOR - k * M for k in range(2000, 2100)]))  # older than the window
        pairs = [("BTCUSDT", "1m"), ("ETHUSDT", "1m"), ("OLDUSDT", "1m")]
        plans = {p.symbol: p for p in plan_history(store, pairs, HistoryDepth(500), ANCHOR + 30_000)}
        btc = plans["BTCUSDT"]
        assert btc.fetch == ((ANCHOR - 51 * M, ANCHOR - 50 * M), (ANCHOR - 500 * M, ANCHOR - 301 * M))
        assert btc.resume_after == ANCHOR - M
        assert plans["ETHUSDT"].fetch == ((ANCHOR - 500 * M, ANCHOR - M),)
        assert plans["OLDUSDT"].fetch == ((ANCHOR - 500 * M, ANCHOR - M),)  # the stale candles do not count
        assert plans["OLDUSDT"].resume_after == ANCHOR - M
        assert "3 streams: 0 hold their depth, 3 to fetch in 4 ranges" in plan_summary(list(plans.values()))
    finally:
        store.close()
