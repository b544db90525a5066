"""The candle store on both backends (embedded chDB and a ClickHouse server): one row per candle, closed
beats open, history order and limits."""

from __future__ import annotations

import pytest

from tacore.store.klines import CANDLE_FIELDS, KlineRow, KlineStore, StorageError, partition_span_ms, version_of


def row(open_time: int, event_time: int, *, closed: bool = False, close: float = 1.5,
        interval: str = "1m") -> KlineRow:
    return KlineRow("BTCUSDT", interval, open_time, open_time + 59_999, 1.0, 2.0, 0.5, close, 10.0, 15.0, 3, 1.0,
                    1.5, closed, event_time, version_of(closed, event_time))


@pytest.fixture
def store(kline_store: KlineStore) -> KlineStore:
    return kline_store  # tests/conftest.py: chDB, then a ClickHouse server


def test_reads_return_one_row_per_candle_and_closed_beats_a_later_open_update(store: KlineStore) -> None:
    store.insert([row(t * 60_000, t * 60_000 + 5) for t in range(5)])
    store.insert([row(t * 60_000, t * 60_000 + 59_000, closed=True, close=9.0) for t in range(3)])
    # an open update with a later event time, e.g. replayed after the close: must not win
    store.insert([row(t * 60_000, t * 60_000 + 70_000, close=7.0) for t in range(5)])
    candles = store.history("BTCUSDT", "1m")
    assert [c["open_time"] for c in candles] == [t * 60_000 for t in range(5)]
    assert [(c["close"], c["closed"]) for c in candles] == [(9.0, True)] * 3 + [(7.0, False)] * 2
    assert tuple(candles[0]) == CANDLE_FIELDS
    assert store.count() == 5 and store.count(closed_only=True) == 3


def test_partitions_hold_360_candles_and_a_settled_partition_rewritten_later_still_reads_once(
        store: KlineStore) -> None:
    assert partition_span_ms("1m") == 6 * 3_600_000 and partition_span_ms("1d") == 360 * 86_400_000
    minutes = 1_200  # 20 hours: four 6-hour partitions, one of them the newest
    store.insert([row(t * 60_000, t * 60_000 + 59_999, closed=True) for t in range(minutes)])
    store.query(f"OPTIMIZE TABLE {store.table} FINAL")  # every partition settled into one merged part
    parts = store.query(f"SELECT partition, count() FROM system.parts WHERE database = currentDatabase() "
                        f"AND table = '{store.table}' AND active GROUP BY partition ORDER BY partition")
    assert [n for _, n in parts] == [1, 1, 1, 1]
    # a late correction of a candle in the first (settled) partition, and the running update of the newest
    store.insert([row(10 * 60_000, 10 * 60_000 + 90_000, closed=True, close=42.0),
                  row(minutes * 60_000, minutes * 60_000 + 5, close=43.0)])
    candles = store.history("BTCUSDT", "1m", limit=2_000)
    assert [c["open_time"] for c in candles] == [t * 60_000 for t in range(minutes + 1)]
    assert candles[10]["close"] == 42.0 and candles[-1]["close"] == 43.0 and candles[11]["close"] == 1.5
    assert store.count() == minutes + 1


def test_history_is_oldest_first_latest_by_default_or_from_start(store: KlineStore) -> None:
    store.insert([row(t * 60_000, t, closed=True) for t in range(20)])
    latest = store.history("BTCUSDT", "1m", limit=3)
    assert [c["open_time"] for c in latest] == [17 * 60_000, 18 * 60_000, 19 * 60_000]
    first = store.history("BTCUSDT", "1m", start=5 * 60_000, limit=2)
    assert [c["open_time"] for c in first] == [5 * 60_000, 6 * 60_000]
    window = store.history("BTCUSDT", "1m", start=5 * 60_000, end=7 * 60_000)
    assert len(window) == 3
    assert store.history("BTCUSDT", "5m") == []
    assert store.history("ETHUSDT", "1m") == []


def test_restart_point_is_the_newest_closed_candle_per_stream(store: KlineStore) -> None:
    store.insert([row(t * 60_000, t, closed=t < 4) for t in range(6)])
    store.insert([row(0, 1, closed=True, interval="5m")])
    store.insert([row(0, 1, interval="15m")])
    assert store.newest_open_times() == {("BTCUSDT", "1m"): (5 * 60_000, 3 * 60_000), ("BTCUSDT", "5m"): (0, 0),
                                         ("BTCUSDT", "15m"): (0, None)}
    latest = store.latest("BTCUSDT", "1m")
    assert latest is not None and latest["open_time"] == 5 * 60_000 and latest["event_time"] == 5


def test_a_server_that_is_down_raises_storage_error_and_recovers_lazily() -> None:
    store = KlineStore("http://127.0.0.1:9/", connect_timeout_s=0.5)
    with pytest.raises(StorageError):
        store.insert([row(0, 1)])
    with pytest.raises(StorageError):
        store.history("BTCUSDT", "1m")
    store.close()


def test_a_restart_resumes_before_a_candle_that_was_still_open() -> None:
    from workers.ingest.history import resume_points

    points = resume_points({("A", "1m"): (600_000, 540_000), ("A", "5m"): (900_000, 300_000),
                            ("A", "15m"): (900_000, None)})
    assert points == {("A", "1m"): 540_000, ("A", "5m"): 600_000, ("A", "15m"): 0}
