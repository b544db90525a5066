"""Request-log reads: every filter, newest-first paging with total, incremental error scans, 422 rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.engine import Engine

from tacore.api import log_reader
from tacore.api.log_reader import LogFilter
from tacore.api.routes.logs import build_filter, to_epoch
from tacore.errors import ErrorCode
from tacore.store.migrate import upgrade_schema
from tacore.store.request_log import insert_records, make_engine


@pytest.fixture
def engine(tmp_path) -> Engine:  # type: ignore[no-untyped-def]
    eng = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    upgrade_schema(eng)
    rows = []
    for i in range(30):
        failed = i % 5 == 0
        rows.append([f"r{i}", "health.check" if i % 3 else "scan.market", "error" if failed else "success",
                     "TIMEOUT" if failed else None, f"w{i % 2}", 5, 0.1, 1.0, 1.2, 1000.0 + i, 1000.0 + i + 0.001,
                     False])
    insert_records(eng, rows)
    yield eng
    eng.dispose()


def test_no_filter_is_everything_newest_first(engine: Engine) -> None:
    total, rows = log_reader.read_page(engine, LogFilter(), 10, 0)
    assert total == 30
    assert [r["request_id"] for r in rows[:3]] == ["r29", "r28", "r27"]


@pytest.mark.parametrize(("flt", "expected"), [
    (LogFilter(method="scan.market"), 10),
    (LogFilter(status="error"), 6),
    (LogFilter(error_code="TIMEOUT"), 6),
    (LogFilter(request_id="r7"), 1),
    (LogFilter(worker_id="w1"), 15),
    (LogFilter(since=1010.0), 20),
    (LogFilter(until=1009.0), 10),
    (LogFilter(since=1010.0, until=1019.0), 10),
    (LogFilter(method="scan.market", status="error"), 2),  # i in {0, 15}
    (LogFilter(method="nope"), 0),
])
def test_each_filter(engine: Engine, flt: LogFilter, expected: int) -> None:
    total, rows = log_reader.read_page(engine, flt, 100, 0)
    assert total == expected == len(rows)


def test_offset_pages_without_overlap(engine: Engine) -> None:
    seen = []
    for offset in range(0, 40, 7):
        total, rows = log_reader.read_page(engine, LogFilter(), 7, offset)
        assert total == 30
        seen.extend(r["id"] for r in rows)
    assert len(seen) == len(set(seen)) == 30


def test_offset_past_the_end_is_empty_with_total(engine: Engine) -> None:
    assert log_reader.read_page(engine, LogFilter(), 10, 500) == (30, [])


def test_errors_between_scans_only_new_rows(engine: Engine) -> None:
    top = log_reader.max_id(engine)
    assert top == 30
    assert [r["request_id"] for r in log_reader.errors_between(engine, 0, top, 3)] == ["r25", "r20", "r15"]
    assert log_reader.errors_between(engine, 26, top, 50) == []


def test_naive_times_are_utc_and_aware_ones_are_respected() -> None:
    assert to_epoch(datetime(1970, 1, 1, 0, 1)) == 60.0
    assert to_epoch(datetime(1970, 1, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == 60.0
    assert to_epoch(None) is None


def test_a_window_ending_before_it_starts_matches_nothing(engine: Engine) -> None:
    early, late = datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    flt = build_filter(None, None, None, None, None, early, late, "all")
    assert flt.since == early.timestamp() and flt.until == late.timestamp()
    assert log_reader.read_page(engine, flt, 10, 0) == (0, [])


def test_build_filter_passes_every_field() -> None:
    flt = build_filter("m", "error", ErrorCode.BUSY, "rid", "w1", datetime(2026, 1, 1, tzinfo=UTC), None)
    assert flt == LogFilter("m", "error", "BUSY", "rid", "w1", datetime(2026, 1, 1, tzinfo=UTC).timestamp(), None,
                            internal=False)  # user requests unless another origin is asked for
    assert build_filter(None, None, None, None, None, None, None, "internal").internal is True
    assert build_filter(None, None, None, None, None, None, None, "all").internal is None


def test_internal_rows_are_their_own_origin_and_left_out_of_recent_errors(engine: Engine) -> None:
    insert_records(engine, [["own1", "kline.status", "error", "TIMEOUT", None, 9, 0.0, 0.0, 700.0, 2000.0, 2000.7,
                             True]])
    assert log_reader.read_page(engine, LogFilter(internal=False), 100, 0)[0] == 30
    total, rows = log_reader.read_page(engine, LogFilter(internal=True), 100, 0)
    assert total == 1 and rows[0]["request_id"] == "own1" and log_reader.shape_rows(rows)[0]["internal"] is True
    assert log_reader.read_page(engine, LogFilter(), 100, 0)[0] == 31
    errors = log_reader.errors_between(engine, 0, log_reader.max_id(engine), 100)
    assert errors and "own1" not in {r["request_id"] for r in errors}


def test_symbol_rows_map_streams_to_symbols_with_the_newest_message() -> None:
    from tacore.api.routes.dashboard import symbol_rows

    conns = [{"streams": ["btcusdt@kline_1h", "btcusdt@kline_1m"], "last_message": 10.0},
             {"streams": ["btcusdt@kline_5m", "ethusdt@kline_1d", "garbage"], "last_message": 20.0},
             {"streams": ["solusdt@kline_1m"], "last_message": None}]
    rows = symbol_rows(["BTCUSDT", "XRPUSDT"], conns)
    assert [r["symbol"] for r in rows] == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]
    btc = rows[0]
    assert btc["intervals"] == ["1m", "5m", "1h"] and btc["last_update"] == 20.0
    assert rows[2]["last_update"] is None and rows[3]["intervals"] == []
