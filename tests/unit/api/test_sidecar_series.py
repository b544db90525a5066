"""The 15-minute ring of per-second samples and the rates derived from successive broker snapshots."""

from __future__ import annotations

import pytest

from tacore.api.series import Ring, Sample, SeriesBuilder

BOUNDS = [1.0, 10.0, 100.0]


def _sample(ts: float) -> Sample:
    return Sample(ts, 1.0, 0.0, 1.0, 2.0, 3.0, 0, 0)


def _metrics(uptime: float, count: int, errors: int = 0, counts: list[int] | None = None,
             method: str = "m") -> dict:
    return {"uptime_s": uptime, "queue_depth": 1, "inflight": 2, "latency_buckets_ms": BOUNDS,
            "methods": {method: {"count": count, "success": count - errors, "error": errors,
                                 "latency_counts": counts or [count, 0, 0, 0]}}}


def test_ring_keeps_only_the_newest_capacity_samples() -> None:
    ring = Ring(capacity=3)
    for ts in range(5):
        ring.append(_sample(float(ts)))
    assert [s.ts for s in ring] == [2.0, 3.0, 4.0]
    assert len(ring) == 3 and ring.last() == _sample(4.0)


def test_ring_since_is_strictly_newer() -> None:
    ring = Ring(capacity=10)
    for ts in range(5):
        ring.append(_sample(float(ts)))
    assert [s.ts for s in ring.since(2.0)] == [3.0, 4.0]
    assert [s.ts for s in ring.since(None)] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert ring.since(99.0) == []


def test_ring_restarts_when_the_clock_goes_back() -> None:
    ring = Ring(capacity=10)
    ring.append(_sample(10.0))
    ring.append(_sample(5.0))
    assert [s.ts for s in ring] == [5.0]


def test_ring_rejects_zero_capacity() -> None:
    with pytest.raises(ValueError):
        Ring(capacity=0)


def test_default_ring_holds_fifteen_minutes() -> None:
    assert SeriesBuilder().ring.capacity == 900


def test_first_snapshot_has_no_rate_then_deltas_give_rps_and_percentiles() -> None:
    series = SeriesBuilder()
    first = series.observe(100.0, _metrics(10, 100))
    assert first.rps is None and first.queue_depth == 1 and first.inflight == 2
    second = series.observe(101.0, _metrics(11, 150, errors=5, counts=[100, 50, 0, 0]))
    assert second.rps == 50.0 and second.errors_ps == 5.0
    assert second.p50_ms is not None and 1.0 <= second.p50_ms <= 10.0  # only the new 50 count


def test_idle_second_has_zero_rate_and_no_percentile() -> None:
    series = SeriesBuilder()
    series.observe(1.0, _metrics(1, 10))
    idle = series.observe(2.0, _metrics(2, 10))
    assert idle.rps == 0.0 and idle.p99_ms is None


def test_broker_restart_resets_the_baseline() -> None:
    series = SeriesBuilder()
    series.observe(1.0, _metrics(100, 1000))
    after = series.observe(2.0, _metrics(0.5, 3))
    assert after.rps is None  # no negative or bogus rate across a restart


def test_gap_is_an_empty_sample() -> None:
    series = SeriesBuilder()
    gap = series.gap(5.0)
    assert gap.rps is None and series.ring.last() == gap


def test_rates_over_the_window_total_and_per_method() -> None:
    series = SeriesBuilder(window_s=60)
    for second in range(0, 121):
        series.observe(float(second), _metrics(float(second), second * 10))
    total, per_method = series.rates()
    assert total == pytest.approx(10.0)
    assert per_method == {"m": pytest.approx(10.0)}
    assert series.rates() != (None, {})


def test_rates_need_two_points() -> None:
    series = SeriesBuilder()
    assert series.rates() == (None, {})
    series.observe(1.0, _metrics(1, 1))
    assert series.rates() == (None, {})
