"""The batch writer: flush by size and by time, outage buffering with a bound, catch-up, cache pushes."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tacore.store.klines import KlineRow, version_of
from tacore.store.price_cache import MemoryPriceCache
from workers.ingest.writer import BatchWriter


class FakeStore:
    """Records INSERTs; ``down`` makes them fail like an unreachable server."""

    kind = "fake"

    def __init__(self) -> None:
        self.batches: list[list[KlineRow]] = []
        self.down = False
        self.lock = threading.Lock()

    def insert(self, rows: Any) -> None:
        if self.down:
            raise ConnectionError("storage is down")
        with self.lock:
            self.batches.append(list(rows))

    def rows(self) -> list[KlineRow]:
        with self.lock:
            return [row for batch in self.batches for row in batch]


def row(open_time: int, event_time: int, *, closed: bool = False, symbol: str = "BTCUSDT",
        interval: str = "1m") -> KlineRow:
    return KlineRow(symbol, interval, open_time, open_time + 59_999, 1.0, 2.0, 0.5, 1.5, 10.0, 15.0, 3, 1.0, 1.5,
                    closed, event_time, version_of(closed, event_time))


def wait_for(predicate: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def test_flushes_by_time_within_the_flush_interval(store: FakeStore) -> None:
    writer = BatchWriter(store, None, batch_rows=1000, flush_s=0.1)  # type: ignore[arg-type]
    writer.start()
    try:
        started = time.monotonic()
        for i in range(10):
            writer.submit(row(0, i))
        wait_for(lambda: writer.rows_written == 10)
        assert time.monotonic() - started < 0.5
        assert len(store.batches) == 1
    finally:
        writer.stop()


def test_flushes_by_size_in_batches_of_at_most_batch_rows(store: FakeStore) -> None:
    writer = BatchWriter(store, None, batch_rows=100, flush_s=5.0)  # type: ignore[arg-type]
    writer.start()
    try:
        for i in range(450):
            writer.submit(row(i * 60_000, i))
        wait_for(lambda: writer.rows_written >= 400)
        assert all(len(batch) <= 100 for batch in store.batches)
    finally:
        writer.stop()
    assert writer.rows_written == 450  # stop flushes the rest


def test_outage_buffers_reports_down_and_catches_up_without_loss(store: FakeStore) -> None:
    writer = BatchWriter(store, None, batch_rows=50, flush_s=0.05)  # type: ignore[arg-type]
    writer.start()
    try:
        store.down = True
        for i in range(200):
            writer.submit(row(i * 60_000, i, closed=True))
        wait_for(lambda: not writer.storage_up)
        assert writer.snapshot()["state"] == "down" and writer.buffered_rows == 200
        assert "storage is down" in (writer.last_error or "")
        store.down = False
        wait_for(lambda: writer.rows_written == 200 and writer.storage_up)
        assert sorted(r.open_time for r in store.rows()) == [i * 60_000 for i in range(200)]
        assert writer.dropped_rows == 0
    finally:
        writer.stop()


def test_bound_compacts_to_the_newest_version_before_dropping(store: FakeStore) -> None:
    writer = BatchWriter(store, None, batch_rows=10, flush_s=0.02, max_buffer=100)  # type: ignore[arg-type]
    store.down = True
    writer.start()
    try:
        for i in range(300):  # 300 updates of 3 candles: at the bound, compaction keeps 3 rows
            writer.submit(row((i % 3) * 60_000, 1000 + i))
        assert writer.compacted_rows > 0 and writer.buffered_rows <= 100
        assert writer.dropped_rows == 0
        store.down = False
        wait_for(lambda: writer.buffered_rows == 0)
        newest = {}
        for r in store.rows():
            newest[r.open_time] = max(newest.get(r.open_time, 0), r.event_time)
        assert newest == {0: 1297, 60_000: 1298, 120_000: 1299}
    finally:
        writer.stop()


def test_past_the_bound_oldest_rows_are_dropped_counted_and_closed_ones_remembered(store: FakeStore) -> None:
    writer = BatchWriter(store, None, batch_rows=10, flush_s=10.0, max_buffer=50)  # type: ignore[arg-type]
    for i in range(80):  # writer thread not started: nothing drains; every row a distinct candle
        writer.submit(row(i * 60_000, i, closed=True))
    assert writer.buffered_rows <= 50
    assert writer.dropped_rows == 80 - writer.buffered_rows and writer.compacted_rows == 0
    assert writer.take_dropped_closed() == {("BTCUSDT", "1m"): 0}
    assert writer.take_dropped_closed() == {}


def test_latest_candles_reach_the_cache_even_while_storage_is_down(store: FakeStore) -> None:
    cache = MemoryPriceCache(60)
    writer = BatchWriter(store, cache, batch_rows=10, flush_s=0.05)  # type: ignore[arg-type]
    store.down = True
    writer.start()
    try:
        writer.submit(row(0, 5))
        writer.submit(row(0, 9)._replace(close=42.0))
        writer.submit(row(0, 7, interval="1d")._replace(close=41.0))
        wait_for(lambda: cache.get("BTCUSDT") is not None)
        snap = cache.get("BTCUSDT")
        assert snap is not None and snap.price == 42.0 and snap.event_time == 9
        assert set(snap.candles) == {"1m", "1d"}
    finally:
        store.down = False
        writer.stop()


def test_lag_is_measured_from_event_time_to_commit(store: FakeStore) -> None:
    now = [10_000]
    writer = BatchWriter(store, None, batch_rows=10, flush_s=0.02, clock_ms=lambda: now[0])  # type: ignore[arg-type]
    writer.start()
    try:
        writer.submit(row(0, 9_900))
        writer.submit(row(0, 9_800))
        wait_for(lambda: writer.rows_written == 2)
        lag = writer.lag_ms()
        assert lag["samples"] == 2 and lag["max"] == 200 and lag["p50"] == 150.0
        assert sum(lag["counts"]) == 2
        assert lag["counts"][lag["buckets_ms"].index(100)] == 1 and lag["counts"][lag["buckets_ms"].index(200)] == 1
        writer.submit_backfill([row(0, 1, closed=True)])  # backfilled rows are not live lag
        wait_for(lambda: writer.rows_written == 3)
        assert writer.lag_ms()["samples"] == 2
    finally:
        writer.stop()


def test_the_cache_gets_24h_figures_counting_a_closed_candle_superseded_within_one_round(store: FakeStore) -> None:
    from tacore.markets.ticker import DAY_MS, ticker_of

    step = 300_000
    cache = MemoryPriceCache(60)
    writer = BatchWriter(store, cache, batch_rows=10_000, flush_s=0.05)  # type: ignore[arg-type]

    def five(open_time: int, event: int, closed: bool, volume: float) -> KlineRow:
        return KlineRow("BTCUSDT", "5m", open_time, open_time + step - 1, 1.0, 2.0, 0.5, 1.5, volume, volume, 1,
                        0.0, 0.0, closed, event, version_of(closed, event))

    seeded = [five(t * step, t * step + step - 1, True, 1.0) for t in range(290)]
    writer.seed_tickers(seeded)  # the stored day, as the agent seeds it at start
    last = 290 * step
    # one round: candle 290 closes and 291 opens before the writer wakes; only 291 is "latest"
    writer.submit(five(last, last + 1000, False, 0.5))
    writer.submit(five(last, last + step + 10, True, 3.0))
    writer.submit(five(last + step, last + step + 20, False, 0.25))
    writer.start()
    try:
        wait_for(lambda: (s := cache.get("BTCUSDT")) is not None and s.ticker is not None)
        snap = cache.get("BTCUSDT")
        assert snap is not None and snap.ticker is not None
        expected = ticker_of([*seeded, five(last, last + step + 10, True, 3.0),
                              five(last + step, last + step + 20, False, 0.25)])
        assert snap.ticker == expected
        assert expected is not None and expected.as_of - DAY_MS < expected.ref_time + step  # type: ignore[operator]
        assert expected.volume is not None and expected.volume > 3.0  # the closed candle 290 counted
    finally:
        writer.stop()


def test_the_next_open_candle_replaces_a_closed_one_as_the_cached_latest(store: FakeStore) -> None:
    cache = MemoryPriceCache(60)
    writer = BatchWriter(store, cache, batch_rows=10, flush_s=0.02)  # type: ignore[arg-type]
    writer.start()
    try:
        writer.submit(row(0, 60_000, closed=True))
        wait_for(lambda: (s := cache.get("BTCUSDT")) is not None and s.candles["1m"]["closed"])
        writer.submit(row(60_000, 62_000)._replace(close=43.0))  # lower version than the closed row above
        wait_for(lambda: (s := cache.get("BTCUSDT")) is not None and s.candles["1m"]["open_time"] == 60_000)
        snap = cache.get("BTCUSDT")
        assert snap is not None and snap.price == 43.0 and snap.candles["1m"]["closed"] is False
    finally:
        writer.stop()
