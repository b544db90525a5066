"""What the candle store holds per stream, in one query each: the history window's coverage (count,
oldest, holes) for planning the history fetch, and the candles that lie ahead of a source's clock.

Both run at the data agent's start over every stream, so they are single statements over the table,
grouped by stream, never a query per stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tacore.intervals import INTERVAL_MS
from tacore.store.klines import KlineStore

Pair = tuple[str, str]

#: holes listed per stream (each becomes one fetch); more are found at the next start
MAX_HOLES = 50
AHEAD_TABLE_SUFFIX = "_ahead"


@dataclass(frozen=True, slots=True)
class WindowCoverage:
    """Closed candles of a stream with an open time at or after its window start."""

    count: int
    oldest: int
    holes: tuple[tuple[int, int], ...]  # (candle before, candle after) around each hole, oldest first


def _step_expr() -> str:
    arms = ", ".join(f"interval = '{interval}', {step}" for interval, step in INTERVAL_MS.items())
    return f"multiIf({arms}, 0)"


def window_coverage(store: KlineStore, starts: Mapping[Pair, int]) -> dict[Pair, WindowCoverage]:
    """Per stream (``(symbol, interval)`` -> window start), the closed candles stored in its window."""
    groups: dict[tuple[str, int], list[str]] = {}
    for (symbol, interval), start in starts.items():
        groups.setdefault((interval, start), []).append(symbol)
    if not groups:
        return {}
    params: dict[str, Any] = {}
    conds = []
    for n, ((interval, start), symbols) in enumerate(groups.items()):
        params[f"i{n}"], params[f"s{n}"], params[f"y{n}"] = interval, start, symbols
        conds.append(f"(interval = {{i{n}:String}} AND open_time >= {{s{n}:Int64}} "
                     f"AND has({{y{n}:Array(String)}}, symbol))")
    sql = (
        f"SELECT symbol, interval, count(), min(open_time), "
        f"groupArrayIf({MAX_HOLES})((prev, open_time), prev != 0 AND open_time - prev > step) "
        f"FROM (SELECT symbol, interval, open_time, {_step_expr()} AS step, "
        f"lagInFrame(open_time, 1, 0) OVER (PARTITION BY symbol, interval ORDER BY open_time ASC "
        f"ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev "
        f"FROM {store.table} FINAL WHERE closed AND ({' OR '.join(conds)})) "
        f"GROUP BY symbol, interval"
    )
    return {(str(symbol), str(interval)): WindowCoverage(int(count), int(oldest),
                                                         tuple((int(a), int(b)) for a, b in holes))
            for symbol, interval, count, oldest, holes in store.query(sql, params)}


@dataclass(frozen=True, slots=True)
class AheadStream:
    """Candles of one stream later than the source's clock (``source_ms``)."""

    symbol: str
    interval: str
    candles: int
    newest_open_time: int
    ahead_ms: int  # newest open time minus the source's clock

    def as_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "interval": self.interval, "candles": self.candles,
                "newest_open_time": self.newest_open_time, "ahead_ms": self.ahead_ms}


_AHEAD = "(open_time > {now:Int64} OR (closed AND close_time > {now:Int64}))"


def candles_ahead(store: KlineStore, source_ms: int, symbols: Iterable[str] | None = None) -> list[AheadStream]:
    """Streams holding candles that opened after ``source_ms``, or claim to have closed after it: the
    source cannot have produced them yet (a store written under a faster or later clock)."""
    params: dict[str, Any] = {"now": int(source_ms)}
    where = _AHEAD
    if symbols is not None:
        params["symbols"] = sorted(set(symbols))
        where += " AND has({symbols:Array(String)}, symbol)"
    sql = (f"SELECT symbol, interval, uniqExact(open_time), max(open_time) FROM {store.table} "
           f"WHERE {where} GROUP BY symbol, interval ORDER BY symbol, interval")
    return [AheadStream(str(s), str(i), int(n), int(newest), int(newest) - int(source_ms))
            for s, i, n, newest in store.query(sql, params)]


def move_ahead_aside(store: KlineStore, source_ms: int, symbols: Iterable[str] | None = None) -> str:
    """Move the candles ahead of ``source_ms`` to ``<table>_ahead`` (same schema): out of every read,
    kept for whoever wants them back. Returns that table's name."""
    aside = store.table + AHEAD_TABLE_SUFFIX
    params: dict[str, Any] = {"now": int(source_ms)}
    where = _AHEAD
    if symbols is not None:
        params["symbols"] = sorted(set(symbols))
        where += " AND has({symbols:Array(String)}, symbol)"
    store.query(f"CREATE TABLE IF NOT EXISTS {aside} AS {store.table}")
    store.query(f"INSERT INTO {aside} SELECT * FROM {store.table} WHERE {where}", params)
    store.query(f"DELETE FROM {store.table} WHERE {where}", params)
    return aside
