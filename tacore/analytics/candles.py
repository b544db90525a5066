"""Reading candles for analytics: one store query per question, answered as numpy arrays.

Both readers ask ClickHouse/chDB for one row per symbol whose columns are arrays (``groupArray``), so a
year of daily closes for 50 symbols crosses into Python as 50 rows, not 18,000 tuples. Reads use ``FINAL``
(one row per candle, see ``tacore.store.klines``). ``groupArray`` keeps the rows of one group in the same
order in every column but does not promise time order, so each series is sorted here by open time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

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
SELECT symbol, groupArray(open_time), groupArray(close_time), groupArray(close), groupArray(closed),
       groupArray(event_time)
FROM (
    SELECT symbol, open_time, close_time, close, closed, event_time FROM {table} FINAL
    WHERE symbol IN {{symbols:Array(String)}} AND interval = {{interval:String}}
      AND open_time >= {{start:Int64}} AND open_time <= {{end:Int64}}
)
GROUP BY symbol
"""

_OHLCV_SQL = """
SELECT groupArray(open_time), groupArray(open), groupArray(high), groupArray(low), groupArray(close),
       groupArray(volume), groupArray(closed), groupArray(event_time)
FROM (
    SELECT open_time, open, high, low, close, volume, closed, event_time FROM {table} FINAL
    WHERE symbol = {{symbol:String}} AND interval = {{interval:String}} AND open_time <= {{end:Int64}}
    ORDER BY open_time DESC LIMIT {{limit:UInt32}}
)
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
    """Closed-candle closes of every symbol with candles opened in ``[start_ms, end_ms]``, in one query.
    A symbol with no candle in the window is absent from the result."""
    sql = _CLOSES_SQL.format(table=reader.table)
    rows = reader.query(sql, {"symbols": list(symbols), "interval": interval, "start": int(start_ms),
                              "end": int(end_ms)})
    series: dict[str, CloseSeries] = {}
    for symbol, open_time, close_time, close, closed, event_time in rows:
        order = _order(open_time)
        closed_mask = _arr(closed, np.bool_, order)
        times = _arr(close_time, np.int64, order)
        closes = _arr(close, np.float64, order)
        events = _arr(event_time, np.int64, order)
        series[str(symbol)] = CloseSeries(
            symbol=str(symbol), close_time=times[closed_mask], close=closes[closed_mask],
            last_price=float(closes[-1]), last_price_time=int(events[-1]))
    return series


def load_ohlcv(reader: CandleReader, symbol: str, interval: str, limit: int, end_ms: int) -> Ohlcv:
    """The newest ``limit`` closed candles opened at or before ``end_ms``, and the open one after them if
    stored (reported apart: indicators use closed candles only)."""
    sql = _OHLCV_SQL.format(table=reader.table)
    rows = reader.query(sql, {"symbol": symbol, "interval": interval, "end": int(end_ms), "limit": int(limit) + 1})
    open_time, o, h, lo, c, v, closed, event_time = rows[0] if rows else ([],) * 8
    order = _order(open_time)
    times = _arr(open_time, np.int64, order)
    closes = _arr(c, np.float64, order)
    closed_mask = _arr(closed, np.bool_, order)
    live_close = live_time = None
    if closed_mask.size and not closed_mask[-1]:
        live_close = float(closes[-1])
        live_time = int(_arr(event_time, np.int64, order)[-1])
    keep = np.flatnonzero(closed_mask)[-limit:]
    return Ohlcv(symbol=symbol, interval=interval, open_time=times[keep],
                 open=_arr(o, np.float64, order)[keep], high=_arr(h, np.float64, order)[keep],
                 low=_arr(lo, np.float64, order)[keep], close=closes[keep],
                 volume=_arr(v, np.float64, order)[keep], live_close=live_close, live_time=live_time)
