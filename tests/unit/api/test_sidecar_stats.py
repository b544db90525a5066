"""Percentiles and totals derived from the broker's cumulative histograms."""

from __future__ import annotations

import pytest

from tacore.api.stats import diff_counts, histogram_quantile, method_summary, totals

BOUNDS = [1.0, 2.0, 5.0, 10.0]


def test_empty_histogram_has_no_quantile() -> None:
    assert histogram_quantile(0.5, BOUNDS, [0, 0, 0, 0, 0]) is None


def test_quantile_interpolates_inside_the_bucket() -> None:
    # 10 requests all in (2, 5]: the median sits half-way through that bucket
    assert histogram_quantile(0.5, BOUNDS, [0, 0, 10, 0, 0]) == pytest.approx(3.5)
    assert histogram_quantile(1.0, BOUNDS, [0, 0, 10, 0, 0]) == pytest.approx(5.0)


def test_first_bucket_starts_at_zero() -> None:
    assert histogram_quantile(0.5, BOUNDS, [4, 0, 0, 0, 0]) == pytest.approx(0.5)


def test_quantiles_are_ordered_across_buckets() -> None:
    counts = [50, 30, 15, 4, 1]
    p50, p95, p99 = (histogram_quantile(q, BOUNDS, counts) for q in (0.5, 0.95, 0.99))
    assert p50 is not None and p95 is not None and p99 is not None
    assert p50 <= 1.0 < p95 <= 5.0 < p99 <= 10.0
    assert p50 < p95 < p99


def test_rank_in_the_inf_bucket_answers_the_last_bound() -> None:
    assert histogram_quantile(0.99, BOUNDS, [1, 0, 0, 0, 99]) == 10.0


def test_quantile_out_of_range_is_an_error() -> None:
    with pytest.raises(ValueError):
        histogram_quantile(1.5, BOUNDS, [1, 0, 0, 0, 0])


def test_diff_never_goes_negative_and_survives_a_restart() -> None:
    assert diff_counts([5, 3, 1], [2, 3, 0]) == [3, 0, 1]
    assert diff_counts([1, 0, 0], [9, 9, 9]) == [0, 0, 0]
    assert diff_counts([1, 2], None) == [1, 2]
    assert diff_counts([1, 2], [1, 2, 3]) == [1, 2]


def _entry(count: int, success: int, counts: list[int], errors: dict[str, int] | None = None) -> dict:
    return {"count": count, "success": success, "error": count - success, "errors": errors or {},
            "latency_counts": counts, "latency_sum_ms": 2.0 * count, "queue_sum_ms": 0.5 * count}


def test_method_summary_row() -> None:
    row = method_summary("health.check", _entry(10, 9, [0, 10, 0, 0, 0], {"INVALID_PARAMS": 1}), BOUNDS)
    assert row["success_rate"] == 0.9 and row["avg_ms"] == 2.0 and row["avg_queue_ms"] == 0.5
    assert row["errors"] == {"INVALID_PARAMS": 1}
    assert 1.0 <= row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] <= 2.0


def test_method_without_traffic_has_no_rates() -> None:
    row = method_summary("kline.status", {}, BOUNDS)
    assert row["count"] == 0 and row["success_rate"] is None and row["p99_ms"] is None


def test_totals_merge_every_method() -> None:
    metrics = {"latency_buckets_ms": BOUNDS, "methods": {
        "a": _entry(10, 10, [10, 0, 0, 0, 0]), "b": _entry(10, 5, [0, 0, 0, 10, 0], {"TIMEOUT": 5})}}
    out = totals(metrics)
    assert out["requests_total"] == 20 and out["error_total"] == 5 and out["success_rate"] == 0.75
    assert out["p50_response_ms"] == pytest.approx(1.0)
    assert 5.0 < out["p95_response_ms"] <= 10.0


def test_targets_follow_the_seeds_key_indicators() -> None:
    from tacore.api.stats import check_targets

    out = check_targets({"p95_response_ms": 12.0, "cpu_percent": 95.0, "memory_percent": None,
                         "cache_hit_rate": 0.95})
    assert out["p95_response_ms"] == {"target": "< 100", "value": 12.0, "met": True}
    assert out["cpu_percent"]["met"] is False
    assert out["memory_percent"]["met"] is None
    assert out["cache_hit_rate"]["met"] is True and out["cache_hit_rate"]["target"] == "> 0.9"
