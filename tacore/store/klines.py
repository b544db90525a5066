"""The candle store: ClickHouse (embedded chDB by default) through clickhouse-connect.

A candle is updated many times while open and may arrive twice (live, then from a backfill), so the
table is a ``ReplacingMergeTree`` keyed by (symbol, interval, open_time) with a ``version`` column:
``closed * 2**62 + event_time``. A closed row therefore always outranks any open update of the same
candle, and among open updates the latest event wins. ClickHouse only collapses duplicates when it
merges parts, at a time of its choosing, so every read here uses ``FINAL`` and returns exactly one
row per candle.

``FINAL`` merges, at read time, every range of the table that another part's range overlaps. The live
stream writes each symbol's running candle every few seconds, and such a part spans every symbol, so
in one big partition it overlaps everything and a read merges all it reads. The table is therefore
partitioned by interval and time (``partition_span_ms``: 360 candles, so 6 hours of 1m and about a year of
1d): a candle's versions always share a partition, ClickHouse merges a partition holding one merged part
not at all, and only the newest partition, which the live writes go to, is merged at read time. Older
partitions are merged into one part an hour after their last write (``min_age_to_force_merge_seconds``).
A table created before this layout keeps working as it is, only its reads merge more.

An on-disk chDB directory can be opened by one process only; in embedded mode the data agent owns
it and everyone else reads through its methods. All calls on one store are serialised by a lock
(the client is not meant for concurrent use) and the client is (re)created lazily, so a store
pointed at a ClickHouse server that is down comes back by itself once the server does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NamedTuple

from tacore.intervals import INTERVAL_MS, INTERVALS

#: Version offset of a closed candle: any closed row outranks every open update of the same candle.
CLOSED_VERSION = 1 << 62

#: Fields of a candle as returned by ``kline.history`` and carried by ``DATA_READY`` events.
CANDLE_FIELDS: tuple[str, ...] = (
    "symbol", "interval", "open_time", "close_time", "open", "high", "low", "close", "volume",
    "quote_volume", "trades", "taker_buy_base_volume", "taker_buy_quote_volume", "closed",
)


class KlineRow(NamedTuple):
    """One candle version, in storage column order. Prices/volumes are floats, times epoch ms."""

    symbol: str
    interval: str
    open_time: int
    close_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trades: int
    taker_buy_base_volume: float
    taker_buy_quote_volume: float
    closed: bool
    event_time: int
    version: int


COLUMNS: tuple[str, ...] = KlineRow._fields

_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    symbol LowCardinality(String),
    interval LowCardinality(String),
    open_time Int64,
    close_time Int64,
    open Float64,
    high Float64,
    low Float64,
    close Float64,
    volume Float64,
    quote_volume Float64,
    trades UInt64,
    taker_buy_base_volume Float64,
    taker_buy_quote_volume Float64,
    closed Bool,
    event_time Int64,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY (interval, intDiv(open_time, transform(interval, {names}, {spans}, {default_span})))
ORDER BY (symbol, interval, open_time)
SETTINGS min_age_to_force_merge_seconds = 3600, min_age_to_force_merge_on_partition_only = 1
"""
#: An insert may touch many partitions (a live batch one per interval; a bulk load of a year of 1m, 1,460).
_INSERT_SETTINGS = {"max_partitions_per_insert_block": 100_000}
#: the condition ``read_newest`` adds for its first, windowed read
_RECENT = " AND open_time >= {recent:Int64}"


def partition_span_ms(interval: str) -> int:
    """Time one partition of ``interval``'s candles covers: 360 candles (1m: 6 hours, 1h: 15 days, 1d: about
    a year). The newest partition is the one ``FINAL`` merges at read time, so it should be a small share of
    what analyses read (a day of 1m, 1,000 candles), and partitions few enough that reads which cannot name
    a time range stay cheap (1m makes 1,460 a year; reads of "the newest N" look in a recent window first,
    ``recent_from_ms``)."""
    return INTERVAL_MS[interval] * 360


def recent_from_ms(interval: str, candles: int, end_ms: int | None = None) -> int:
    """Where a read of the newest ``candles`` candles (at or before ``end_ms``, else now) looks first: twice
    their span plus four days (weekends, holidays, halts) back. The table is partitioned by time, so an
    unbounded "newest N" read opens every partition the stream ever had (90 days of 1m: 360 partitions,
    ~70 ms instead of ~7 on a 2 vCPU guest); when the window holds fewer than ``candles``, the caller reads
    again unbounded, so the answer is the same."""
    reference = end_ms if end_ms is not None else int(time.time() * 1000)
    return reference - 2 * candles * INTERVAL_MS[interval] - 4 * 86_400_000


def read_newest(query: Callable[[str, dict[str, Any]], list[tuple[Any, ...]]], sql: Callable[[str], str],
                params: dict[str, Any], interval: str, count: int, end_ms: int | None = None) -> list[tuple[Any, ...]]:
    """The rows of a read of the newest ``count`` candles of one stream: ``sql(condition)`` is its statement
    with ``condition`` added to its WHERE clause. First within the recent window (``recent_from_ms``), then,
    when that held fewer than ``count`` rows, again without it: the same answer, without opening every
    partition the stream ever had in the usual case."""
    rows = query(sql(_RECENT), {**params, "recent": recent_from_ms(interval, count, end_ms)})
    if len(rows) < count:
        rows = query(sql(""), params)
    return rows


def _ddl(table: str) -> str:
    names = "[" + ", ".join(f"'{name}'" for name in INTERVALS) + "]"
    spans = "[" + ", ".join(str(partition_span_ms(name)) for name in INTERVALS) + "]"
    return _DDL.format(table=table, names=names, spans=spans, default_span=partition_span_ms("1d"))

_CANDLE_SELECT = ", ".join(CANDLE_FIELDS)


def version_of(closed: bool, event_time: int) -> int:
    """ReplacingMergeTree version: closed beats open, then the later event wins."""
    return (CLOSED_VERSION if closed else 0) + event_time


def candle_dict(row: KlineRow) -> dict[str, Any]:
    """The public candle: exactly ``CANDLE_FIELDS``."""
    return dict(zip(CANDLE_FIELDS, row[:14], strict=True))


class StorageError(RuntimeError):
    """The store could not be reached or refused a statement."""


class KlineStore:
    """Batched writes and one-row-per-candle reads of the ``klines`` table."""

    def __init__(self, dsn: str, *, table: str = "klines", connect_timeout_s: float = 2.0) -> None:
        self.dsn = dsn
        self.table = table
        self.kind = "chdb" if dsn.startswith("chdb:") else "clickhouse"
        self._connect_timeout_s = connect_timeout_s
        self._client: Any = None
        self._lock = threading.Lock()

    # -- connection ----------------------------------------------------------------------------
    def _connect(self) -> Any:
        import clickhouse_connect

        if self.kind == "chdb":
            path = self.dsn.removeprefix("chdb://")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            client = clickhouse_connect.get_client(dsn=self.dsn)
        else:
            client = clickhouse_connect.get_client(dsn=self.dsn, connect_timeout=self._connect_timeout_s,
                                                   send_receive_timeout=30)
        client.command(_ddl(self.table))
        return client

    @contextmanager
    def _session(self) -> Iterator[Any]:
        """The live client under the lock; a failure drops it so the next call reconnects."""
        with self._lock:
            try:
                if self._client is None:
                    self._client = self._connect()
                yield self._client
            except Exception as exc:
                if self.kind != "chdb":
                    self._drop_client()
                raise StorageError(f"{self.kind} store: {type(exc).__name__}: {exc}") from exc

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with suppress(Exception):
                client.close()

    def open(self) -> None:
        """Connect and create the table now (raises StorageError when storage is down)."""
        with self._session():
            pass

    def close(self) -> None:
        with self._lock:
            self._drop_client()

    # -- writes --------------------------------------------------------------------------------
    def insert(self, rows: Sequence[KlineRow]) -> None:
        """One INSERT for the whole batch, sent column-wise (cheapest for clickhouse-connect)."""
        if not rows:
            return
        columns = [list(col) for col in zip(*rows, strict=True)]
        with self._session() as client:
            client.insert(self.table, columns, column_names=COLUMNS, column_oriented=True,
                          settings=_INSERT_SETTINGS)

    # -- reads ---------------------------------------------------------------------------------
    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of any read statement (``{name:Type}`` placeholders bound from ``parameters``); the table is
        ``self.table``. Analytics compile their questions to one such query instead of pulling candles."""
        with self._session() as client:
            return list(client.query(sql, parameters=dict(parameters or {})).result_rows)

    _query = query

    def history(self, symbol: str, interval: str, *, start: int | None = None, end: int | None = None,
                limit: int = 500) -> list[dict[str, Any]]:
        """Candles oldest first. With ``start`` the first ``limit`` from it, else the latest ``limit``."""
        where = ["symbol = {symbol:String}", "interval = {interval:String}"]
        params: dict[str, Any] = {"symbol": symbol, "interval": interval, "limit": int(limit)}
        if start is not None:
            where.append("open_time >= {start:Int64}")
            params["start"] = int(start)
        if end is not None:
            where.append("open_time <= {end:Int64}")
            params["end"] = int(end)
        order = "ASC" if start is not None else "DESC"
        def sql(recent: str = "") -> str:
            return (f"SELECT {_CANDLE_SELECT} FROM {self.table} FINAL WHERE {' AND '.join(where)}{recent} "
                    f"ORDER BY open_time {order} LIMIT {{limit:UInt32}}")

        if start is None:
            rows = read_newest(self._query, sql, params, interval, limit, end)
        else:
            rows = self._query(sql(), params)
        if order == "DESC":
            rows.reverse()
        return [_candle(row) for row in rows]

    def latest(self, symbol: str, interval: str) -> dict[str, Any] | None:
        """The newest candle with its ``event_time`` (the exchange time of the version stored)."""
        def sql(recent: str = "") -> str:
            return (f"SELECT {_CANDLE_SELECT}, event_time FROM {self.table} FINAL WHERE symbol = {{symbol:String}} "
                    f"AND interval = {{interval:String}}{recent} ORDER BY open_time DESC LIMIT 1")

        rows = read_newest(self._query, sql, {"symbol": symbol, "interval": interval}, interval, 1)
        if not rows:
            return None
        candle = _candle(rows[0][:-1])
        candle["event_time"] = int(rows[0][-1])
        return candle

    def candle_at(self, symbol: str, interval: str, open_time: int) -> dict[str, Any] | None:
        candles = self.history(symbol, interval, start=open_time, end=open_time, limit=1)
        return candles[0] if candles else None

    def newest_open_times(self) -> dict[tuple[str, str], tuple[int, int | None]]:
        """Per stream: the newest candle stored (any state) and the newest closed one (None if none)."""
        sql = (f"SELECT symbol, interval, max(open_time), maxIf(open_time, closed), countIf(closed) "
               f"FROM {self.table} GROUP BY symbol, interval")
        return {(str(s), str(i)): (int(newest), int(closed) if n_closed else None)
                for s, i, newest, closed, n_closed in self._query(sql)}

    def count(self, *, closed_only: bool = False) -> int:
        """Distinct candles stored (one per key, as reads see them)."""
        where = " WHERE closed" if closed_only else ""
        return int(self._query(f"SELECT count() FROM {self.table} FINAL{where}")[0][0])


def _candle(row: Sequence[Any]) -> dict[str, Any]:
    candle = dict(zip(CANDLE_FIELDS, row, strict=True))
    candle["trades"] = int(candle["trades"])
    candle["closed"] = bool(candle["closed"])
    return candle
