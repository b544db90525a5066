"""What the request log stores per field is bounded: any record the broker ships fits every database."""

from __future__ import annotations

import math

from tacore.store.request_log import RECORD_FIELDS, bounded_row


def test_long_strings_are_cut_to_their_column_and_nul_characters_replaced() -> None:
    record = ["r" * 300, "m" * 200, "error", "E" * 40, "w\x00" * 100, 5, 0.1, 0.2, 0.3, 1.0, 2.0, False]
    row = bounded_row(record)
    assert list(row) == list(RECORD_FIELDS)
    assert len(row["request_id"]) == 256 and len(row["method"]) == 128 and len(row["error_code"]) == 32
    assert len(row["worker_id"]) == 128 and "\x00" not in row["worker_id"]


def test_numbers_that_are_not_finite_are_stored_as_zero() -> None:
    row = bounded_row([None, "m", "success", None, None, 5, math.nan, math.inf, -math.inf, 1.0, 2, True])
    assert (row["queue_ms"], row["processing_ms"], row["total_ms"], row["finished_at"]) == (0.0, 0.0, 0.0, 2.0)
    assert row["request_id"] is None and row["error_code"] is None


def test_an_ordinary_record_is_unchanged() -> None:
    record = ["abc", "health.check", "success", None, "w1", 5, 0.1, 0.2, 0.3, 1.0, 2.0, False]
    assert bounded_row(record) == dict(zip(RECORD_FIELDS, record, strict=True))
