"""Putting a 24/7 market and a session market on one grid: the rule of tacore.analytics.alignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tacore.analytics.alignment import PriceSeries, align, simple_returns

H = 3_600_000
D = 24 * H


def _series(times: list[int], values: list[float], bpy: float) -> PriceSeries:
    return PriceSeries(np.array(times, dtype=np.int64), np.array(values, dtype=np.float64), bpy)


def test_one_market_is_an_inner_join_on_close_times() -> None:
    a = _series([1 * D, 2 * D, 3 * D, 4 * D], [10, 11, 12, 13], 365)
    b = _series([1 * D, 2 * D, 4 * D], [20, 21, 23], 365)  # missed day 3
    aligned = align([a, b])
    assert aligned.times.tolist() == [1 * D, 2 * D, 4 * D]
    assert aligned.values.tolist() == [[10, 20], [11, 21], [13, 23]]
    assert aligned.bars_per_year == 365


def test_a_crypto_position_is_sampled_at_each_us_close_with_weekend_moves_in_monday() -> None:
    # US closes Fri (day 4 21:00) and Mon (day 7 21:00); crypto closes every midnight
    us = _series([4 * D + 21 * H, 7 * D + 21 * H], [100, 101], 252)
    crypto = _series([d * D for d in range(1, 9)], [float(d) for d in range(1, 9)], 365)
    aligned = align([us, crypto])
    assert aligned.times.tolist() == [4 * D + 21 * H, 7 * D + 21 * H]
    assert aligned.values[:, 1].tolist() == [4.0, 7.0]  # last close at or before each US close
    assert simple_returns(aligned.values)[0, 1] == pytest.approx(7 / 4 - 1)  # Fri -> Mon carries Sat, Sun
    assert aligned.bars_per_year == 252


def test_a_grid_time_without_a_fresh_sample_is_dropped_for_every_series() -> None:
    us = _series([1 * D + 21 * H, 2 * D + 21 * H, 3 * D + 21 * H], [100, 101, 102], 252)
    crypto = _series([1 * D, 2 * D, 4 * D], [1, 2, 4], 365)  # nothing closed between day 2 21:00 and day 3 21:00
    aligned = align([us, crypto])
    assert aligned.times.tolist() == [1 * D + 21 * H, 2 * D + 21 * H]
    crypto_late = _series([5 * D], [5], 365)  # no candle at or before any US close
    assert align([us, crypto_late]).times.size == 0


def test_as_of_sampling_matches_pandas_merge_asof() -> None:
    rng = np.random.default_rng(1)
    us_times = np.sort(rng.choice(np.arange(30, 400) * D + 21 * H, 200, replace=False))
    crypto_times = np.arange(0, 420) * D + D - 1
    crypto_values = rng.normal(100, 5, crypto_times.size)
    aligned = align([PriceSeries(us_times, np.arange(us_times.size, dtype=np.float64), 252),
                     PriceSeries(crypto_times, crypto_values, 365)])
    merged = pd.merge_asof(pd.DataFrame({"t": us_times}), pd.DataFrame({"t": crypto_times, "c": crypto_values}),
                           on="t", direction="backward")
    assert aligned.times.tolist() == us_times.tolist()  # crypto closes daily: every sample is fresh
    assert aligned.values[:, 1].tolist() == merged["c"].tolist()


def test_multi_column_series_keep_their_columns_in_order() -> None:
    book = PriceSeries(np.array([1 * D, 2 * D, 3 * D], dtype=np.int64), np.array([[1, 2], [3, 4], [5, 6]], float), 252)
    bench = _series([D - 5, 2 * D - 5, 3 * D - 5], [7, 8, 9], 365)
    aligned = align([book, bench])
    assert aligned.values.tolist() == [[1, 2, 7], [3, 4, 8], [5, 6, 9]]
