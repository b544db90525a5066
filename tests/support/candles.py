"""Candles made to order for analytics tests: given closes become full klines rows for the real store."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tacore.intervals import INTERVAL_MS
from tacore.markets import load_markets
from tacore.store.klines import KlineRow, version_of
from tests.support.processes import ROOT

DAY_MS = 86_400_000


def day_open(ts_ms: int) -> int:
    return ts_ms - ts_ms % DAY_MS


def crypto_days(end_ms: int, count: int) -> list[int]:
    """Open times of the ``count`` daily candles (24/7) closed by ``end_ms``."""
    last = day_open(end_ms) - DAY_MS
    return [last - (count - 1 - i) * DAY_MS for i in range(count)]


def nyse_days(end_ms: int, count: int) -> list[int]:
    """Open times (session opens) of the last ``count`` NYSE sessions closed by ``end_ms``."""
    calendar = load_markets(ROOT / "config" / "trading_config.yaml").get("US").calendar
    sessions = calendar.sessions(end_ms - (count * 2 + 30) * DAY_MS, end_ms)
    closed = [s for s in sessions if s[0] + DAY_MS <= end_ms]
    return [open_ms for open_ms, _ in closed[-count:]]


def rows_from_closes(symbol: str, interval: str, open_times: Sequence[int], closes: Sequence[float], *,
                     highs: Sequence[float] | None = None, lows: Sequence[float] | None = None,
                     volumes: Sequence[float] | None = None, last_open: bool = False) -> list[KlineRow]:
    """One closed candle per close (the open is the previous close); ``last_open`` leaves the newest open."""
    step = INTERVAL_MS[interval]
    rows = []
    for i, (open_time, close) in enumerate(zip(open_times, closes, strict=True)):
        prev = closes[i - 1] if i else close
        high = highs[i] if highs is not None else max(prev, close) * 1.004
        low = lows[i] if lows is not None else min(prev, close) * 0.996
        volume = volumes[i] if volumes is not None else 1000.0 + 10.0 * (i % 7)
        closed = not (last_open and i == len(closes) - 1)
        event = open_time + step if closed else open_time + step // 2
        rows.append(KlineRow(symbol, interval, int(open_time), int(open_time) + step - 1, float(prev), float(high),
                             float(low), float(close), float(volume), float(volume * close), 10, volume / 2,
                             volume * close / 2, closed, int(event), version_of(closed, int(event))))
    return rows


def random_walk(seed: int, count: int, *, start: float = 100.0, drift: float = 0.0003, vol: float = 0.02,
                t_dof: float | None = None) -> list[float]:
    """Prices of a geometric random walk (fat-tailed with ``t_dof``)."""
    rng = np.random.default_rng(seed)
    shocks = rng.standard_t(t_dof, count) * vol / np.sqrt(t_dof / (t_dof - 2)) if t_dof else \
        rng.normal(0.0, vol, count)
    return [float(x) for x in start * np.cumprod(1.0 + drift + shocks)]
