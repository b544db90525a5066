"""Run a market scan: compile the criteria, ask the candle store once, shape the reply.

The reply names what was scanned and how: the market and its quote currency, the timeframe, the
``as_of`` time, the candles read per timeframe, each filter in chain order with how many symbols it
dropped and how many remained, the fields computed (with the candles each needs), and the page of
matches with every field's value. A symbol is dropped, never an error, when it lacks candles.
"""

from __future__ import annotations

import re
import time
from typing import Any, Protocol

from tacore.analytics.scan_criteria import FieldSpec, ScanParams
from tacore.analytics.scan_sql import CompiledScan, compile_scan, field_key
from tacore.errors import Unavailable
from tacore.markets import MarketRegistry
from tacore.store.klines import StorageError


class CandleQueries(Protocol):
    """What a scan needs of the candle store (``KlineStore``)."""

    table: str

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]: ...


def scan_market(store: CandleQueries, markets: MarketRegistry, params: ScanParams, *,
                now_ms: int | None = None) -> dict[str, Any]:
    """The scan's reply; an unknown market is INVALID_PARAMS, a store that is down UNAVAILABLE."""
    market = markets.get(params.market or markets.default)
    criteria = params.criteria
    as_of = criteria.as_of if criteria.as_of is not None else (now_ms or int(time.time() * 1000))
    compiled = compile_scan(criteria, market, markets, as_of=as_of, table=store.table)
    started = time.perf_counter()
    try:
        rows = store.query(compiled.sql, compiled.parameters)
    except StorageError as exc:
        raise Unavailable(f"candle storage is down: {exc}") from None
    query_ms = (time.perf_counter() - started) * 1000
    reply = shape_reply(compiled, rows[0])
    return {"market": market.name, "quote_currency": market.quote_currency, **reply,
            "query_ms": round(query_ms, 3)}


def shape_reply(compiled: CompiledScan, row: tuple[Any, ...]) -> dict[str, Any]:
    """The reply's body from the query's one row (see ``scan_sql`` for its columns)."""
    scanned, left, page, candles, symbols, newest, listed_found = row
    filters, remaining = [], int(scanned)
    for link, after in zip(compiled.links, left, strict=True):
        filters.append({"source": link.source, "field": field_key(link.left, compiled.timeframe),
                        "op": link.op.value, "value": _echo(link.value, compiled.timeframe),
                        "dropped": remaining - int(after), "remaining": int(after)})
        remaining = int(after)
    keys = [c.key for c in compiled.columns]
    results = [{"symbol": item[0], "values": {k: None if v != v else v for k, v in zip(keys, item[1:], strict=True)}}
               for item in page]  # NaN (v != v): the symbol has no value for the field
    return {
        "timeframe": compiled.timeframe, "as_of": compiled.as_of,
        "scanned": int(scanned), "matched": remaining, "count": len(results),
        "offset": compiled.offset, "limit": compiled.limit,
        "sort_by": compiled.sort_key or "symbol", "order": compiled.order,
        "filters": filters,
        "fields": [{"key": c.key, "field": c.spec.field.value, "period": c.spec.period, "timeframe": c.spec.timeframe,
                    "min_candles": c.min_candles, "candles_read": c.candles_read} for c in compiled.columns],
        "candles": {tf.interval: {"candles": int(n), "symbols": int(s), "from": tf.from_ms,
                                  "newest_open_time": int(t) if s else None}
                    for tf, n, s, t in zip(compiled.timeframes, candles, symbols, newest, strict=True)},
        "missing": missing_listed(compiled, set(listed_found)),
        "results": results,
    }


def missing_listed(compiled: CompiledScan, found: set[str]) -> list[str]:
    """Symbols the market lists by name (and the include/exclude patterns keep) without a candle scanned."""
    include = [re.compile(p) for p in compiled.include]
    exclude = [re.compile(p) for p in compiled.exclude]
    return [s for s in compiled.universe if s not in found
            and (not include or any(p.fullmatch(s) for p in include)) and not any(p.fullmatch(s) for p in exclude)]


def _echo(value: Any, timeframe: str) -> Any:
    """A filter's value as the reply shows it: fields by their keys."""
    if isinstance(value, FieldSpec):
        return field_key(value, timeframe)
    if isinstance(value, tuple):
        return [_echo(v, timeframe) for v in value]
    return value
