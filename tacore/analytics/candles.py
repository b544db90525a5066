"""Reading candles for analytics: one store query per question, answered as numpy arrays.

Reads use ``FINAL`` (one row per candle, see ``tacore.store.klines``). The closes of many symbols come as one
row per symbol whose columns are arrays (``groupArrayIf``), so a year of daily closes for 50 symbols crosses
into Python as 50 rows, not 18,000 tuples; ``groupArray`` keeps the rows of a group in the same order in every
column but does not promise time order, so each series is sorted here by open time. One symbol's candles come
as plain rows (cheaper in chDB than the array form for a single series, measured).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from tacore.intervals import INTERVAL_MS
from tacore.store.klines import read_newest

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


class CandleReader(Protocol):
    """What analytics need from the candle store (``tacore.store.klines.KlineStore`` is one)."""

    table: str

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]: ...


@dataclass(frozen=True, slots=True)
class CloseSeries:
    """One symbol's closed candles in a window, oldest first, and its latest price (open candle or not)."""

    symbol: str
    close_time: I64
    close: F64
    last_price: float
    last_price_time: int  # exchange time of the newest candle version stored, epoch ms

    @property
    def count(self) -> int:
        return int(self.close.size)


@dataclass(frozen=True, slots=True)
class Ohlcv:
    """One symbol's latest closed candles, oldest first, plus the candle still open (if stored)."""

    symbol: str
    interval: str
    open_time: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    live_close: float | None  # close of the newest candle when it is still open
    live_time: int | None

    @property
    def count(self) -> int:
        return int(self.close.size)


_CLOSES_SQL = """
SELECT symbol, groupArrayIf(open_time, closed), groupArrayIf(close, closed), argMax(close, open_time),
       argMax(event_time, open_time)
FROM {table} FINAL
WHERE symbol IN {{symbols:Array(String)}} AND interval = {{interval:String}}
  AND open_time >= {{start:Int64}} AND open_time <= {{end:Int64}}
GROUP BY symbol
"""

_OHLCV_SQL = """
SELECT open_time, open, high, low, close, volume, closed, event_time FROM {table} FINAL
WHERE symbol = {{symbol:String}} AND interval = {{interval:String}} AND open_time <= {{end:Int64}}{recent}
ORDER BY open_time DESC LIMIT {{limit:UInt32}}
"""


def _order(open_time: Sequence[int]) -> npt.NDArray[np.intp] | None:
    """The sorting permutation, or None when already in time order (the usual case)."""
    times = np.asarray(open_time, dtype=np.int64)
    if times.size < 2 or bool(np.all(times[1:] > times[:-1])):
        return None
    return np.argsort(times, kind="stable")


def _arr(values: Sequence[Any], dtype: type, order: npt.NDArray[np.intp] | None) -> Any:
    array: Any = np.asarray(values, dtype=dtype)
    return array if order is None else array[order]


def load_closes(reader: CandleReader, symbols: Sequence[str], interval: str, start_ms: int,
                end_ms: int) -> dict[str, CloseSeries]:
    """Closed-candle closes of every symbol with candles opened in ``[start_ms, end_ms]``, and its newest
    price (open candle or not), in one query. A symbol with no candle in the window is absent.
    ``close_time`` is the candle's nominal end, ``open_time + interval - 1`` (what the feeds store)."""
    sql = _CLOSES_SQL.format(table=reader.table)
    rows = reader.query(sql, {"symbols": list(symbols), "interval": interval, "start": int(start_ms),
                              "end": int(end_ms)})
    step = INTERVAL_MS[interval]
    series: dict[str, CloseSeries] = {}
    for symbol, open_time, close, last_close, last_event in rows:
        order = _order(open_time)
        series[str(symbol)] = CloseSeries(
            symbol=str(symbol), close_time=_arr(open_time, np.int64, order) + (step - 1),
            close=_arr(close, np.float64, order), last_price=float(last_close), last_price_time=int(last_event))
    return series


def load_ohlcv(reader: CandleReader, symbol: str, interval: str, limit: int, end_ms: int) -> Ohlcv:
    """The newest ``limit`` closed candles opened at or before ``end_ms``, and the open one after them if
    stored (reported apart: indicators use closed candles only)."""
    params = {"symbol": symbol, "interval": interval, "end": int(end_ms), "limit": int(limit) + 1}
    rows = read_newest(reader.query, lambda recent: _OHLCV_SQL.format(table=reader.table, recent=recent), params,
                       interval, limit + 1, end_ms)
    if not rows:
        empty = np.empty(0)
        return Ohlcv(symbol, interval, np.empty(0, dtype=np.int64), empty, empty, empty, empty, empty, None, None)
    rows.reverse()  # oldest first
    table = np.array(rows, dtype=np.float64)  # (n, 8): open_time .. event_time, exact for epoch ms
    closed = table[:, 6] != 0
    live_close = live_time = None
    if not closed[-1]:
        live_close, live_time = float(table[-1, 4]), int(table[-1, 7])
    keep = np.flatnonzero(closed)[-limit:]
    data = table[keep]
    return Ohlcv(symbol=symbol, interval=interval, open_time=data[:, 0].astype(np.int64),
                 open=np.ascontiguousarray(data[:, 1]), high=np.ascontiguousarray(data[:, 2]),
                 low=np.ascontiguousarray(data[:, 3]), close=np.ascontiguousarray(data[:, 4]),
                 volume=np.ascontiguousarray(data[:, 5]), live_close=live_close, live_time=live_time)
