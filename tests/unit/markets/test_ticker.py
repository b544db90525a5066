"""Rolling 24 h ticker figures: kept incrementally, they equal a from-scratch computation at every step,
whatever order candles arrive in; a weekend stock compares with the previous session; under 24 h of
history every figure is null."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from tacore.markets.ticker import DAY_MS, RollingTicker, Ticker24h, TickerBook, ticker_of
from tacore.store.klines import KlineRow, version_of

STEP = 300_000


def bar(open_time: int, *, closed: bool = True, event_time: int | None = None, close: float = 100.0,
        high: float | None = None, low: float | None = None, volume: float = 1.0, symbol: str = "BTCUSDT") -> KlineRow:
    event = open_time + STEP - 1 if event_time is None else event_time
    return KlineRow(symbol, "5m", open_time, open_time + STEP - 1, close, high if high is not None else close + 1,
                    low if low is not None else close - 1, close, volume, volume * close, 1, 0.0, 0.0, closed,
                    event, version_of(closed, event))


def oracle(rows: list[KlineRow]) -> Ticker24h | None:
    """The definition, computed from scratch: newest version of each candle, window and reference."""
    if not rows:
        return None
    as_of = max(max(r.event_time, r.open_time + STEP) if r.closed else r.event_time for r in rows)
    newest: dict[int, KlineRow] = {}
    for r in rows:
        kept = newest.get(r.open_time)
        if kept is None or r.version >= kept.version:
            newest[r.open_time] = r
    closed_times = sorted(t for t, r in newest.items() if r.closed)
    candles = [newest[t] for t in sorted(newest) if newest[t].closed
               or (not closed_times or t > closed_times[-1])]
    cut = as_of - DAY_MS
    refs = [c for c in candles if c.closed and c.open_time + STEP <= cut]
    if not refs:
        return Ticker24h(as_of, None, None, None, None, None, None, 0)
    ref = refs[-1]
    window = [c for c in candles if c.open_time > ref.open_time]
    running = [c for c in window if not c.closed]
    window = [c for c in window if c.closed] + running[-1:]
    if not window:
        return Ticker24h(as_of, ref.close, ref.open_time + STEP, None, None, 0.0, 0.0, 0)
    return Ticker24h(as_of, ref.close, ref.open_time + STEP, max(c.high for c in window),
                     min(c.low for c in window), sum(c.volume for c in window),
                     sum(c.quote_volume for c in window), len(window))


def approx(t: Ticker24h | None) -> object:
    if t is None:
        return None
    return (t.as_of, t.ref_price, t.ref_time, t.high, t.low, pytest.approx(t.volume), pytest.approx(t.quote_volume),
            t.candles)


def test_rolling_figures_equal_a_full_recomputation_after_every_update() -> None:
    rng = random.Random(7)
    ticker = RollingTicker()
    seen: list[KlineRow] = []
    t0 = 1_700_000_000_000 // STEP * STEP
    history = [bar(t0 + i * STEP, close=100 + rng.random(), volume=rng.random()) for i in range(400)]
    rng.shuffle(history)  # fetched pages arrive in any order
    for row in history[:300]:
        ticker.add(row)
        seen.append(row)
    assert approx(ticker.figures()) == approx(oracle(seen))
    for row in history[300:]:  # live candles interleaved with the rest of the history
        for k in range(3):  # open updates of the next candle, then its close
            live_open = t0 + (400 + len(seen) % 50) * STEP
            update = bar(live_open, closed=False, event_time=live_open + 60_000 * (k + 1), close=100 + rng.random(),
                         volume=rng.random())
            ticker.add(update)
            seen.append(update)
        ticker.add(row)
        seen.append(row)
        assert approx(ticker.figures()) == approx(oracle(seen))


def test_with_less_than_24_hours_of_candles_every_figure_is_null() -> None:
    t0 = 1_700_000_000_000 // STEP * STEP
    ticker = RollingTicker()
    for i in range(200):  # 16.7 h
        ticker.add(bar(t0 + i * STEP))
    figures = ticker.figures()
    assert figures is not None and figures.ref_price is None and figures.high is None and figures.volume is None
    assert figures.change(123.0) == (None, None)


def test_change_is_against_the_close_of_the_candle_that_closed_24_hours_before_the_last_event() -> None:
    t0 = 1_700_000_000_000 // STEP * STEP
    rows = [bar(t0 + i * STEP, close=float(i), volume=2.0) for i in range(300)]
    figures = ticker_of(rows)
    assert figures is not None
    as_of = rows[-1].open_time + STEP
    ref = max((r for r in rows if r.open_time + STEP <= as_of - DAY_MS), key=lambda r: r.open_time)
    assert figures.ref_price == ref.close and figures.ref_time == ref.open_time + STEP
    assert figures.as_of == rows[-1].open_time + STEP  # a closed candle is an event at its end
    assert figures.candles == 288 and figures.volume == pytest.approx(576.0)
    assert figures.high == 300.0 and figures.low == ref.close  # the candle after ref has low = its close - 1
    change, pct = figures.change(305.0)
    assert change == pytest.approx(305.0 - ref.close) and pct == pytest.approx((305.0 - ref.close) / ref.close * 100)


def test_a_stock_on_a_weekend_compares_fridays_close_with_thursdays() -> None:
    def utc(*args: int) -> int:
        return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)

    rows = []
    for day, base in ((26, 100.0), (27, 110.0)):  # Thu 26, Fri 27 Nov 2026, session 14:30-21:00 UTC
        opens = range(utc(2026, 11, day, 14, 30), utc(2026, 11, day, 21, 0), STEP)
        rows += [bar(t, close=base + i / 100, symbol="AAPL") for i, t in enumerate(opens)]
    thursday_close = [r for r in rows if r.open_time < utc(2026, 11, 27)][-1]
    friday = [r for r in rows if r.open_time >= utc(2026, 11, 27)]
    figures = ticker_of(rows)  # read on Saturday: the last event is Friday's close
    assert figures is not None and figures.as_of == friday[-1].open_time + STEP
    assert figures.ref_price == thursday_close.close
    assert figures.candles == len(friday) and figures.volume == pytest.approx(len(friday))
    assert figures.high == max(r.high for r in friday) and figures.low == min(r.low for r in friday)


def test_the_book_keeps_one_ticker_per_symbol_and_ignores_other_intervals() -> None:
    book = TickerBook()
    t0 = 1_700_000_000_000 // STEP * STEP
    other = bar(t0)._replace(interval="1m")
    touched = book.add([bar(t0, symbol="A"), bar(t0, symbol="B"), other])
    assert touched == {"A", "B"} and "A" in book and book.figures("C") is None
    book.forget(["A"])
    assert "A" not in book and "B" in book
