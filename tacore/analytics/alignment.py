"""Putting price series of different markets on one time grid, so their returns cover the same periods.

A 24/7 market (crypto) has a candle every interval; a session market (US equities) only in its sessions, so
their candles do not line up: 7 daily candles a week against 5, and closes at different hours. The rule:

1. The *anchor* series are those of the market with the fewest bars per year among the series given (the
   session market in a mixed book; every series in a one-market book). The grid is the set of close times
   that every anchor series has (an inner join: a bar missing from one of them drops that time for all).
2. Every other series is sampled *as of* each grid time: its last close at or before it, never a later one.
   A sample counts only when that candle closed after the previous grid time, so each grid step sees a
   fresh price; a time where some series has none is dropped for all.

So a crypto position in a book with US stocks gets one return per US session, from one US close to the
next: Monday's return carries the weekend's crypto moves, as it would in a portfolio valued at US closes.
The grid's bars per year are the anchor market's, which is what annualises every figure computed on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class PriceSeries:
    """Prices of one or more columns sampled at ``times`` (close times, ascending, epoch ms)."""

    times: I64
    values: F64  # shape (n,) or (n, columns)
    bars_per_year: float

    def matrix(self) -> F64:
        return self.values.reshape(self.times.size, -1)


@dataclass(frozen=True, slots=True)
class AlignedPrices:
    times: I64  # the grid
    values: F64  # (grid points, total columns), columns in the order of the series given
    bars_per_year: float  # the anchor market's


def _as_of(series: PriceSeries, grid: I64) -> tuple[F64, npt.NDArray[np.bool_]]:
    """Values of ``series`` at each grid time and whether each is a fresh sample."""
    idx = np.searchsorted(series.times, grid, side="right") - 1
    found = idx >= 0
    safe = np.clip(idx, 0, None)
    sampled_at = series.times[safe]
    previous = np.empty_like(grid)
    if grid.size:
        previous[0] = np.iinfo(np.int64).min
        previous[1:] = grid[:-1]
    fresh = found & (sampled_at > previous)
    return series.matrix()[safe], fresh


def align(series: Sequence[PriceSeries]) -> AlignedPrices:
    """The common grid of ``series`` (see the module's rule) and every column's price on it."""
    if not series:
        raise ValueError("nothing to align")
    slowest = min(s.bars_per_year for s in series)
    anchors = [s for s in series if s.bars_per_year == slowest]
    # the close times every anchor series has (each series' times are unique): one pass, not n - 1 joins
    times, counts = np.unique(np.concatenate([s.times for s in anchors]), return_counts=True)
    grid = np.asarray(times[counts == len(anchors)], dtype=np.int64)
    keep = np.ones(grid.size, dtype=np.bool_)
    widths = [s.matrix().shape[1] for s in series]
    values = np.empty((grid.size, sum(widths)))
    column = 0
    for s, width in zip(series, widths, strict=True):
        if s.bars_per_year == slowest:
            values[:, column:column + width] = s.matrix()[np.searchsorted(s.times, grid)]
        else:
            sampled, fresh = _as_of(s, grid)
            keep &= fresh
            values[:, column:column + width] = sampled
        column += width
    return AlignedPrices(grid[keep], values[keep], slowest)


def simple_returns(prices: F64) -> F64:
    """Bar-to-bar simple returns of each column: one row fewer than ``prices``."""
    return np.asarray(prices[1:] / prices[:-1] - 1.0, dtype=np.float64)
