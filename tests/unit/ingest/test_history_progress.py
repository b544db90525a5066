"""History progress (wanted, fetched, pending streams, ETA, done) and the request-weight budget that
keeps the fetch under the exchange's per-minute limit."""

from __future__ import annotations

import asyncio

import pytest

from workers.ingest.limits import WeightBudget
from workers.ingest.progress import HistoryProgress


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_stream_is_done_when_its_ranges_and_its_resume_backfill_ended() -> None:
    clock = FakeClock(100.0)
    progress = HistoryProgress(clock=clock)
    progress.expect("btcusdt@kline_1m", 1000, ranges=2, resume=True)
    progress.expect("btcusdt@kline_5m", 500, ranges=1, resume=False)
    progress.expect("ethusdt@kline_1m", 0, ranges=0, resume=False)  # nothing to wait for: not tracked
    clock.now = 110.0
    progress.fetched_rows("btcusdt@kline_1m", 400)
    snap = progress.snapshot(weight_used=4, weight_budget=4800)
    assert snap["done"] is False and snap["pending_streams"] == 2
    assert snap["candles_wanted"] == 1500 and snap["candles_fetched"] == 400 and snap["candles_remaining"] == 1100
    assert snap["eta_s"] == pytest.approx(1100 / 40.0)  # 400 candles in 10 s
    assert {s["stream"] for s in snap["streams"]} == {"btcusdt@kline_1m", "btcusdt@kline_5m"}
    assert progress.range_done("btcusdt@kline_5m") is False  # one stream done, another pending
    assert progress.range_done("btcusdt@kline_1m") is False
    assert progress.range_done("btcusdt@kline_1m") is False
    clock.now = 112.0
    assert progress.resume_done("btcusdt@kline_1m") is True  # the last one: the wave is complete
    snap = progress.snapshot(weight_used=8, weight_budget=4800)
    assert snap["done"] is True and snap["eta_s"] == 0.0 and snap["streams"] == []
    assert snap["streams_done"] == 2 and snap["last_completed_in_s"] == pytest.approx(12.0)
    assert snap["weight_used"] == 8


def test_a_removed_stream_no_longer_counts_as_pending() -> None:
    progress = HistoryProgress()
    progress.expect("a@kline_1m", 100, ranges=1, resume=False)
    progress.forget("a@kline_1m")
    assert progress.snapshot(weight_used=0, weight_budget=1)["done"] is True
    progress.fetched_rows("a@kline_1m", 5)  # late rows of a removed stream are ignored
    assert progress.fetched == 0


def test_weight_waits_for_the_next_minute_when_the_budget_is_spent() -> None:
    clock = FakeClock(60 * 1000 + 50.0)  # 10 s before a minute ends
    budget = WeightBudget(10, clock=clock)
    assert budget.delay(2) == 0.0
    budget.used = 9
    assert budget.delay(2) == pytest.approx(10.05)
    assert budget.delay(1) == 0.0
    clock.now += 10.0  # the next minute: the exchange forgets, so do we
    assert budget.delay(2) == 0.0 and budget.used == 0


def test_the_exchanges_header_raises_our_count_but_never_lowers_it() -> None:
    budget = WeightBudget(100, clock=FakeClock(30.0))
    budget.used = 20
    budget.observe("57")  # other clients of our IP spent weight too
    assert budget.used == 57
    budget.observe("3")
    budget.observe(None)
    budget.observe("garbage")
    assert budget.used == 57


def test_acquire_sleeps_until_the_weight_fits_and_counts_what_was_spent() -> None:
    clock = FakeClock(59.98)

    async def sleep(seconds: float) -> None:
        clock.now += seconds  # time passes as the budget asked

    budget = WeightBudget(4, clock=clock, sleep=sleep)

    async def scenario() -> None:
        await budget.acquire(2)
        await budget.acquire(2)
        await budget.acquire(2)  # over the 4 of this minute: waits into the next one

    asyncio.run(scenario())
    assert budget.waits == 1 and budget.total == 6 and budget.used == 2 and clock.now >= 60.0
    assert budget.snapshot()["total"] == 6


def test_a_stream_waiting_for_its_plan_is_pending_and_done_when_the_plan_is_empty() -> None:
    progress = HistoryProgress()
    progress.planning("aapl@kline_1m")
    progress.planning("aapl@kline_5m")
    assert progress.snapshot(weight_used=0, weight_budget=1)["pending_streams"] == 2
    progress.expect("aapl@kline_1m", 0, ranges=0, resume=False)  # nothing to fetch after all
    progress.expect("aapl@kline_5m", 30, ranges=1, resume=True)
    snap = progress.snapshot(weight_used=0, weight_budget=1)
    assert snap["pending_streams"] == 1 and snap["candles_wanted"] == 30 and snap["streams_done"] == 1
    progress.range_done("aapl@kline_5m")
    assert progress.resume_done("aapl@kline_5m") is True
