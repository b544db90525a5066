"""Store reads on both backends (embedded chDB, then a ClickHouse server): candles ahead of the source's
clock are found and moved aside (kept, out of every read), the clock report reaches clock.json; the market
rows of many symbols read by key ranges or by one scan are the same, and stop at the source's clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from tacore.markets.ticker import ticker_of
from tacore.store.coverage import candles_ahead, move_ahead_aside, window_coverage
from tacore.store.klines import KlineRow, KlineStore, version_of
from tacore.store.market_rows import market_rows
from workers.ingest.clock import StoreClock, read_clock_file

M = 60_000
STEP = {"1m": M, "5m": 5 * M, "1d": 1440 * M}
NOW = 1_800_000_000_000 // (1440 * M) * (1440 * M) + 600 * M  # 10:00 UTC, the source's clock


def candles(symbol: str, interval: str, first: int, count: int, *, last_open: bool = False,
            base: float = 100.0) -> list[KlineRow]:
    step = STEP[interval]
    out = []
    for i in range(count):
        t = first + i * step
        closed = not (last_open and i == count - 1)
        event = t + step - 1 if closed else t + step // 2
        out.append(KlineRow(symbol, interval, t, t + step - 1, base + i, base + i + 1, base + i - 1, base + i + 0.5,
                            1.0 + i % 3, (1.0 + i % 3) * (base + i), 1, 0.0, 0.0, closed, event,
                            version_of(closed, event)))
    return out


@pytest.fixture
def store(kline_store: KlineStore) -> KlineStore:
    return kline_store  # tests/conftest.py: chDB, then a ClickHouse server


def test_candles_ahead_of_the_source_are_moved_aside_and_reported(store: KlineStore, tmp_path: Path) -> None:
    now_1m = NOW - NOW % M
    store.insert(candles("BTCUSDT", "1m", now_1m - 100 * M, 101, last_open=True))  # the past and the running one
    store.insert(candles("BTCUSDT", "1m", now_1m + M, 49, last_open=True))  # from a 60x clock: up to 49 min ahead
    store.insert(candles("ETHUSDT", "5m", now_1m - 50 * 5 * M, 60))  # closes up to 50 min after the source's now
    ahead = {(a.symbol, a.interval): a for a in candles_ahead(store, NOW)}
    assert set(ahead) == {("BTCUSDT", "1m"), ("ETHUSDT", "5m")}
    assert ahead[("BTCUSDT", "1m")].candles == 49  # the candle running at NOW is not ahead
    assert ahead[("BTCUSDT", "1m")].ahead_ms == now_1m + 49 * M - NOW

    clock = StoreClock(store, tmp_path / "agent")
    report = clock.check(NOW, clock.stream_ends(), move=True)
    assert report.state == "ok" and report.moved_aside is not None
    assert report.moved_aside["stream_count"] == 2 and report.moved_aside["table"] == "klines_ahead"
    assert report.moved_aside["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert candles_ahead(store, NOW) == []
    stored = store.history("BTCUSDT", "1m", limit=1000)
    assert stored[-1]["open_time"] == now_1m and len(stored) == 101
    assert store.query("SELECT uniqExact(symbol, interval, open_time) FROM klines_ahead")[0][0] == 49 + 10
    on_disk = read_clock_file(tmp_path / "agent")
    assert on_disk is not None and on_disk["state"] == "ok" and on_disk["moved_aside"]["candles"] == 59


def test_ahead_candles_found_while_running_are_reported_not_moved(store: KlineStore, tmp_path: Path) -> None:
    store.insert(candles("BTCUSDT", "1m", NOW + 10 * M, 5))
    clock = StoreClock(store, tmp_path)
    report = clock.check(NOW, clock.stream_ends(), move=False)
    assert report.state == "ahead" and report.as_dict()["ahead_candles"] == 5
    assert report.as_dict()["max_ahead_ms"] == 14 * M
    assert len(candles_ahead(store, NOW)) == 1
    assert read_clock_file(tmp_path)["state"] == "ahead"  # type: ignore[index]
    assert move_ahead_aside(store, NOW, ["ETHUSDT"]) == "klines_ahead"  # another symbol: nothing moves
    assert len(candles_ahead(store, NOW)) == 1


def test_window_coverage_counts_the_window_and_lists_its_holes(store: KlineStore) -> None:
    rows = candles("BTCUSDT", "1m", NOW - 200 * M, 200)
    store.insert([r for r in rows if r.open_time not in (NOW - 150 * M, NOW - 149 * M)])
    cov = window_coverage(store, {("BTCUSDT", "1m"): NOW - 180 * M, ("ETHUSDT", "1m"): NOW - 180 * M})
    assert set(cov) == {("BTCUSDT", "1m")}
    assert cov[("BTCUSDT", "1m")].count == 178 and cov[("BTCUSDT", "1m")].oldest == NOW - 180 * M
    assert cov[("BTCUSDT", "1m")].holes == ((NOW - 151 * M, NOW - 148 * M),)


def test_market_rows_by_key_ranges_and_by_scan_agree_and_stop_at_the_source_clock(store: KlineStore) -> None:
    symbols = [f"S{n:02d}USDT" for n in range(20)]
    for n, symbol in enumerate(symbols):
        store.insert(candles(symbol, "5m", NOW - 400 * 5 * M, 400, last_open=True, base=100.0 + n))
        store.insert(candles(symbol, "1m", NOW - 30 * M, 30, last_open=True, base=100.0 + n))
        store.insert(candles(symbol, "1d", NOW - NOW % STEP["1d"] - 3 * STEP["1d"], 4, last_open=True))
    store.insert(candles(symbols[0], "1m", NOW + 60 * M, 3))  # ahead of the source's clock
    narrow_latest, narrow_ticker = market_rows(store, symbols[:4], not_after_ms=NOW)
    wide_latest, wide_ticker = market_rows(store, symbols, not_after_ms=NOW)  # more than 16: one scan
    for symbol in symbols[:4]:
        for interval in ("1m", "1d"):
            assert narrow_latest[(symbol, interval)] == wide_latest[(symbol, interval)]
        assert ticker_of(narrow_ticker[symbol]) == ticker_of(wide_ticker[symbol])
    assert narrow_latest[(symbols[0], "1m")].open_time == NOW - M  # not the candle from the future
    expected = ticker_of(candles(symbols[2], "5m", NOW - 400 * 5 * M, 400, last_open=True, base=102.0))
    assert ticker_of(narrow_ticker[symbols[2]]) == expected
    assert expected is not None and expected.ref_price is not None and expected.candles == 289  # 288 + running
    assert len(wide_latest) == 40 and len(wide_ticker) == 20
    assert market_rows(store, ["NOPEUSDT"]) == ({}, {})


def test_candles_written_after_the_stream_ends_were_read_never_count_as_ahead(store: KlineStore,
                                                                                tmp_path: Path) -> None:
    clock = StoreClock(store, tmp_path)
    store.insert(candles("BTCUSDT", "1m", NOW - 10 * M, 10, last_open=True))
    ends = clock.stream_ends()
    store.insert(candles("BTCUSDT", "1m", NOW + M, 1, last_open=True))  # a live feed, after NOW was read
    assert clock.check(NOW, ends, move=False).state == "ok"
    assert clock.check(NOW, clock.stream_ends(), move=False).state == "ahead"
