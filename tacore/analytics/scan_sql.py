"""Compile a scan's criteria chain into ONE ClickHouse query over the candle table.

The query, stage by stage:

1. ``t0``, ``t1``...: per timeframe used, its candles within its lookback window, one version per candle
   (``FINAL``, the window applied before the merge), grouped per symbol into the count, the newest open
   time and the columns its fields need as arrays sorted by open time (or, for the last day's traded
   value, a plain sum);
2. ``per_symbol``: the timeframes joined by symbol, kept when the symbol belongs to the market
   (membership decided per symbol after grouping: per row it cost more than it saved);
3. ``scored``: per symbol, every field of the chain (``scan_fields``), then the first filter it fails;
4. one row out: the symbols scanned, how many are left after each filter (in chain order), the matches
   sorted and paged (``arraySort`` / ``arraySlice`` over the passing rows), the candles read.

A read per timeframe: the table is partitioned by interval (``tacore/store/klines.py``), so each read
touches only its own interval's partitions and columns, and each grouping runs its aggregates on its own
rows only (one read with an ``-If`` aggregate per timeframe cost ~12 ms more CPU on the benchmark's scan).

Every value from the request (thresholds, periods, patterns, times) is a bound query parameter;
the SQL text holds only names from the field and operator whitelists and names made here.
``FINAL`` rather than an ``argMax`` per candle: on chDB 26 the latter's (symbol, open_time) grouping
costs several times more than ``FINAL``'s merge of the few parts a window touches.

Every expression is written once (``scan_fields.let``): ClickHouse's analyzer names an expression by its
whole tree, through subqueries, so one read twice doubles the names built on it, and planning such names
cost more than reading the candles (``docs/analytics.md``, "How it runs").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from tacore.analytics.scan_criteria import (
    COMPARISONS,
    CROSSES,
    PERCENT_RANGES,
    PERCENTS,
    PRESENCE,
    RANGES,
    FieldSpec,
    Op,
    ScanCriteria,
)
from tacore.analytics.scan_fields import (
    FIELDS,
    FieldName,
    Frame,
    Slots,
    let,
    smoothing_factors,
    smoothing_weights,
    warmup_candles,
)
from tacore.intervals import INTERVAL_MS
from tacore.markets import Market, MarketRegistry
from tacore.markets.calendar import DAY_MS, YEAR_DAYS, SessionCalendar, calendar_named

YEAR_MS = YEAR_DAYS * DAY_MS
#: added to a session market's lookback so weekends and holidays never starve a window
SESSION_GAP_MS = 4 * DAY_MS

#: array name in the timeframe CTE -> the candle column it gathers
_ARRAY_COLUMNS = {"c": "close", "h": "high", "l": "low", "v": "volume", "q": "quote_volume"}
#: Evaluating every field on every symbol is cheaper than ClickHouse's per-row short-circuit of ``if``
#: (measured: about a third less CPU for a chain with RSI), and the expressions are safe on any input.
#: Two threads: the read, ``FINAL``'s merge and the grouping split into two streams, so the benchmark's scan
#: answers in ~46 ms instead of ~66 for ~7 % more CPU (71 vs 66 ms, 2 vCPU guest, 2026-12-05; planning, ~18 ms,
#: stays on one thread). More threads gained nothing there, and a scan should leave the data agent's other
#: calls (``kline.*``, ``get.market_data``) room on a small host.
_SETTINGS = "SETTINGS short_circuit_function_evaluation = 'disable', max_threads = 2"
_WORD = re.compile(r"\w+")
_COMPARE_SQL = {Op.GREATER: ">", Op.EGREATER: ">=", Op.LESS: "<", Op.ELESS: "<=", Op.EQUAL: "=", Op.NEQUAL: "!="}


def field_key(spec: FieldSpec, scan_timeframe: str) -> str:
    """How a field is named in the reply: ``rsi(14)``, ``price``, ``quote_volume(1440)@1m``."""
    key = spec.field.value if spec.period is None else f"{spec.field.value}({spec.period})"
    own = FIELDS[spec.field].timeframe is not None  # a field that reads one timeframe never names it
    return key if own or spec.timeframe in (None, scan_timeframe) else f"{key}@{spec.timeframe}"


@lru_cache(maxsize=16)
def _regular_session_ms(calendar_name: str) -> float:
    """The median session's length: the regular session, not the early closes that shorten the mean."""
    calendar = calendar_named(calendar_name)
    if isinstance(calendar, SessionCalendar):
        return float(np.median(calendar.closes - calendar.opens))
    return float(calendar.session_ms)


def day_ms(market: Market) -> int:
    """Trading time in one regular session of the market (a whole day for 24/7 crypto, 6.5 hours for NYSE):
    what "the last day" spans in the design document's ``min_volume``."""
    return round(min(_regular_session_ms(market.calendar_name), DAY_MS))


def day_window(market: Market, as_of: int) -> list[tuple[int, int]]:
    """The last day before ``as_of`` as ``[start, stop)`` ranges of open times: the 1,440 minutes before it
    on a 24/7 market; on a session market a regular session's worth of trading time, counted back across
    closes, weekends and holidays (``TradingCalendar.trading_window``). A candle counts when it opened in
    them: with every minute stored, 1,440 (390 on NYSE) whatever ``as_of``."""
    return market.calendar.trading_window(as_of, day_ms(market))


def lookback_ms(market: Market, interval: str, candles: int) -> int:
    """Calendar time read to find a symbol's last ``candles`` candles: twice the time they take on this
    market (gaps, halts), plus four days on a session market (weekends, holidays)."""
    span = candles / market.bars_per_year(interval) * YEAR_MS
    gap = 0 if market.calendar.session_ms >= DAY_MS else SESSION_GAP_MS
    return int(2 * span) + gap + INTERVAL_MS[interval]


@dataclass(frozen=True, slots=True)
class Link:
    """One filter of the chain, its fields' timeframes resolved."""

    source: str
    left: FieldSpec
    op: Op
    value: Any


@dataclass(slots=True)
class TimeframePlan:
    interval: str
    prefix: str
    columns: set[str] = field(default_factory=set)
    #: the most candles a field reads back (0: only last-day sums read it)
    candles: int = 0
    from_ms: int = 0
    #: a field reads the newest candle's event time
    event_time: bool = False
    #: columns summed over the last day's time window (no arrays needed for them)
    day_columns: set[str] = field(default_factory=set)
    #: that window's ``[start, stop)`` ranges of open times
    day_ranges: list[tuple[int, int]] = field(default_factory=list)
    #: the per-symbol columns it yields (``t0_n``, ``t0_c``, ...)
    outputs: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """A field's value column: ``alias`` in the SQL, ``key`` in the reply."""

    key: str
    spec: FieldSpec
    alias: str
    offset: int
    min_candles: int
    candles_read: int


@dataclass(frozen=True, slots=True)
class CompiledScan:
    sql: str
    parameters: dict[str, Any]
    links: list[Link]
    #: the page's value columns, in the order of each match tuple after the symbol
    columns: list[ColumnPlan]
    timeframes: list[TimeframePlan]
    sort_key: str | None
    order: str
    as_of: int
    timeframe: str
    offset: int
    limit: int
    #: the market's listed symbols and the scan's symbol patterns (to name listed symbols without candles)
    universe: tuple[str, ...]
    include: tuple[str, ...]
    exclude: tuple[str, ...]


def chain(criteria: ScanCriteria, market: Market) -> list[Link]:
    """The filters in order: the design document's short form first, then ``filters``."""
    tf = criteria.timeframe or "1d"
    links = []
    if criteria.min_volume is not None:
        volume = FieldSpec(field=FieldName.DAY_QUOTE_VOLUME).resolved(tf)
        links.append(Link("criteria.min_volume", volume, Op.EGREATER, float(criteria.min_volume)))
    if criteria.price_range is not None:
        price = FieldSpec(field=FieldName.PRICE, timeframe=tf)
        links.append(Link("criteria.price_range", price, Op.IN_RANGE, tuple(criteria.price_range)))
    for index, item in enumerate(criteria.filters):
        value = item.value
        if isinstance(value, FieldSpec):
            value = value.resolved(tf)
        elif isinstance(value, tuple):
            value = tuple(v.resolved(tf) if isinstance(v, FieldSpec) else v for v in value)
        left = FieldSpec(field=item.field, period=item.period, timeframe=item.timeframe).resolved(tf)
        links.append(Link(f"criteria.filters.{index}", left, item.op, value))
    return links


class _Compiler:
    def __init__(self, criteria: ScanCriteria, market: Market, markets: MarketRegistry, as_of: int,
                 table: str) -> None:
        self.criteria = criteria
        self.market = market
        self.markets = markets
        self.as_of = as_of
        self.table = table
        self.timeframe = criteria.timeframe or "1d"
        self.params: dict[str, Any] = {}
        self.timeframes: dict[str, TimeframePlan] = {}
        self.columns: dict[tuple[str, int | None, str, int], ColumnPlan] = {}
        #: (name, expression) columns by stage: stage k reads only columns of the stages before it
        self.stages: list[list[tuple[str, str]]] = []

    # -- parameters ------------------------------------------------------------------------------------
    def bind(self, name: str, value: Any, type_: str) -> str:
        self.params[name] = value
        return f"{{{name}:{type_}}}"

    # -- fields ------------------------------------------------------------------------------------------
    def frame_of(self, interval: str) -> TimeframePlan:
        plan = self.timeframes.get(interval)
        if plan is None:
            plan = self.timeframes[interval] = TimeframePlan(interval, f"t{len(self.timeframes)}")
        return plan

    def column(self, spec: FieldSpec, offset: int = 0) -> str:
        """The alias of ``spec``'s value (``offset`` candles ago), adding its expression once."""
        spec = spec.resolved(self.timeframe)
        assert spec.timeframe is not None
        ident = (spec.field.value, spec.period, spec.timeframe, offset)
        known = self.columns.get(ident)
        if known is not None:
            return known.alias
        definition = FIELDS[spec.field]
        tf = self.frame_of(spec.timeframe)
        alias = f"{'v' if offset == 0 else 'w'}{len(self.columns)}"
        read = definition.candles_read(spec.period)
        if definition.day_columns:  # the candles of the last day's window, when none is missing
            read = day_ms(self.market) // INTERVAL_MS[tf.interval]
            tf.day_ranges = day_window(self.market, self.as_of)
        plan = ColumnPlan(field_key(spec, self.timeframe), spec, alias, offset, definition.min_candles(spec.period),
                          read)
        self.columns[ident] = plan
        tf.columns |= definition.columns
        tf.day_columns |= definition.day_columns
        tf.event_time |= definition.name is FieldName.CANDLE_AGE_S
        if not definition.day_columns:
            tf.candles = max(tf.candles, definition.candles_read(spec.period) + offset)
        slots = Slots(period=f"{{{alias}_p:Int64}}", warmup=f"{{{alias}_w:Int64}}", decay=f"{{{alias}_decay:Float64}}",
                      gain=f"{{{alias}_gain:Float64}}", weights=f"{{{alias}_wts:Array(Float64)}}",
                      as_of="{as_of:Int64}", bars_per_year=f"{{{tf.prefix}_bpy:Float64}}")
        frame = Frame(tf.prefix, offset)
        stages, expr = definition.build(frame, slots, alias)
        need = f"{{{alias}_need:Int64}}"
        # no value (NaN) without enough candles or when not finite (a division by zero); ``ifNotFinite`` reads
        # the expression once, where ``if(isFinite(x), x, nan)`` would write it twice (and plan it twice)
        value = f"if({frame.count} >= {need}, ifNotFinite({expr}, nan), nan)"
        # a field's intermediates (RSI's changes, its weights...) as lambda arguments: every field in one stage,
        # so the query nests two subqueries over ``per_symbol``, not one per intermediate (less to analyse)
        for columns in reversed(stages):
            value = let(dict(columns), value)
        stages = [[(alias, value)]]
        for depth, columns in enumerate(stages):
            self.stage(depth).extend(columns)
        # bind what the expression uses (derived numbers bound too: fewer functions for ClickHouse to plan)
        text = " ".join(sql for columns in stages for _, sql in columns)
        period = spec.period or 0
        decay, gain = smoothing_factors(definition.smoothing, period) if definition.smoothing else (0.0, 0.0)
        for placeholder, name, value_, type_ in (
                (slots.period, f"{alias}_p", period, "Int64"), (need, f"{alias}_need", plan.min_candles, "Int64"),
                (slots.warmup, f"{alias}_w", warmup_candles(period), "Int64"),
                (slots.decay, f"{alias}_decay", decay, "Float64"), (slots.gain, f"{alias}_gain", gain, "Float64"),
                (slots.weights, f"{alias}_wts", smoothing_weights(decay, period) if decay else "[]", "Array(Float64)"),
                (slots.bars_per_year, f"{tf.prefix}_bpy", self.market.bars_per_year(tf.interval), "Float64")):
            if placeholder in text:
                self.bind(name, value_, type_)
        return alias

    def stage(self, depth: int) -> list[tuple[str, str]]:
        while len(self.stages) <= depth:
            self.stages.append([])
        return self.stages[depth]

    def operand(self, value: Any, name: str, offset: int = 0) -> str:
        if isinstance(value, FieldSpec):
            return self.column(value, offset)
        return self.bind(name, float(value), "Float64")

    # -- filters -------------------------------------------------------------------------------------------
    def passes(self, index: int, link: Link) -> str:
        """SQL that is 1 when the symbol passes the link, else 0; a field without a value (NaN) fails every
        operator but ``empty``."""
        op, value, k = link.op, link.value, f"k{index}"
        left = self.column(link.left)
        if op in PRESENCE:
            return f"isNaN({left})" if op is Op.EMPTY else f"NOT isNaN({left})"
        # each operand bound once (``let``), however often the test reads it
        bound = {"_l": left}
        if op is Op.NEQUAL:  # the one comparison a NaN (no value) passes
            bound["_r"] = self.operand(value, k)
            sql = "NOT isNaN(_l) AND NOT isNaN(_r) AND _l != _r"
        elif op in COMPARISONS:
            bound["_r"] = self.operand(value, k)
            sql = f"_l {_COMPARE_SQL[op]} _r"
        elif op in RANGES:
            bound |= {"_lo": self.operand(value[0], f"{k}_low"), "_hi": self.operand(value[1], f"{k}_high")}
            sql = "_l >= _lo AND _l <= _hi" if op is Op.IN_RANGE else "_l < _lo OR _l > _hi"
        elif op in CROSSES:
            bound |= {"_r": self.operand(value, k), "_b": self.column(link.left, 1),
                      "_rb": self.operand(value, k, 1)}
            above, below = "(_b <= _rb AND _l > _r)", "(_b >= _rb AND _l < _r)"
            sql = above if op is Op.CROSSES_ABOVE else below if op is Op.CROSSES_BELOW else f"{above} OR {below}"
        elif op in PERCENTS:
            bound["_ref"] = self.operand(value[0], f"{k}_ref")
            pct = self.bind(f"{k}_pct", float(value[1]), "Float64")
            sql = f"_l > _ref * (1 + {pct} / 100)" if op is Op.ABOVE_PCT else f"_l < _ref * (1 - {pct} / 100)"
        else:
            assert op in PERCENT_RANGES
            bound["_ref"] = self.operand(value[0], f"{k}_ref")
            low = f"_ref * (1 + {self.bind(f'{k}_low', float(value[1]), 'Float64')} / 100)"
            high = f"_ref * (1 + {self.bind(f'{k}_high', float(value[2]), 'Float64')} / 100)"
            sql = (f"_l >= {low} AND _l <= {high}" if op is Op.IN_RANGE_PCT
                   else f"_l < {low} OR _l > {high}")
        return let(bound, f"({sql})")

    # -- symbols ---------------------------------------------------------------------------------------
    def symbol_filter(self) -> Callable[[str], str]:
        """SQL of "``symbol`` is scanned": include/exclude patterns (full match)."""
        parts: list[str] = []
        if self.criteria.include:
            pattern = "^(?:" + "|".join(f"(?:{p})" for p in self.criteria.include) + ")$"
            parts.append("match({s}, " + self.bind("include", pattern, "String") + ")")
        if self.criteria.exclude:
            pattern = "^(?:" + "|".join(f"(?:{p})" for p in self.criteria.exclude) + ")$"
            parts.append("NOT match({s}, " + self.bind("exclude", pattern, "String") + ")")
        return lambda s: " AND ".join(p.replace("{s}", s) for p in parts) or "1"

    def membership(self) -> str:
        """SQL of ``MarketRegistry.market_of(symbol) == market``: listed by this market and by none declared
        before it, or listed by no other market and matching this market's pattern before any earlier one's."""
        markets = list(self.markets)
        position = next(i for i, m in enumerate(markets) if m.name == self.market.name)
        before, others = markets[:position], [m for m in markets if m.name != self.market.name]
        mine = self.bind("m_universe", sorted(self.market.universe), "Array(String)")
        listed_before = self.bind("m_listed_before", sorted({s for m in before for s in m.universe}), "Array(String)")
        listed_other = self.bind("m_listed_other", sorted({s for m in others for s in m.universe}), "Array(String)")
        pattern = self.bind("m_pattern", f"^(?:{self.market.symbol_pattern})$", "String")
        by_pattern = [f"symbol NOT IN {listed_other}", f"match(symbol, {pattern})"]
        by_pattern += [f"NOT match(symbol, {self.bind(f'm_pattern_before{i}', f'^(?:{m.symbol_pattern})$', 'String')})"
                       for i, m in enumerate(before)]
        return (f"((symbol IN {mine} AND symbol NOT IN {listed_before}) OR "
                f"({' AND '.join(by_pattern)}))")

    # -- assembly --------------------------------------------------------------------------------------------
    def compile(self) -> CompiledScan:
        criteria = self.criteria
        links = chain(criteria, self.market)
        flags = [self.passes(i, link) for i, link in enumerate(links)]
        sort_alias = self.column(criteria.sort_by) if criteria.sort_by is not None else None
        self.frame_of(self.timeframe)  # the scan's timeframe defines the universe even with no field on it
        self.bind("as_of", self.as_of, "Int64")
        if flags:  # the first filter a symbol fails (1-based; 0: none): survivors and matches follow from it
            self.stages.append([("failed", f"arrayFirstIndex(x -> NOT x, [{', '.join(flags)}])")])
        order = criteria.order or ("desc" if sort_alias is not None else "asc")
        page_columns = [c for c in self.columns.values() if c.offset == 0]
        timeframes = ",\n".join(self.timeframe_sql(tf) for tf in self.timeframes.values())
        per_symbol = self.per_symbol_sql()
        reply = self.reply_sql(len(flags), page_columns, sort_alias, order)
        sql = f"WITH {timeframes},\n{per_symbol}\nSELECT {reply} FROM {self.scored_sql(reply)}\n{_SETTINGS}"
        sort_key = next((c.key for c in page_columns if c.alias == sort_alias), None)
        return CompiledScan(sql, self.params, links, page_columns, list(self.timeframes.values()), sort_key, order,
                            self.as_of, self.timeframe, criteria.offset, criteria.limit,
                            tuple(sorted(self.market.universe)), tuple(criteria.include), tuple(criteria.exclude))

    def scored_sql(self, reply: str) -> str:
        """The stages over ``per_symbol``, each selecting only the columns read after it (fewer columns to
        resolve: ClickHouse's analysis, not the arithmetic, is most of a small scan's cost)."""
        read_after: list[set[str]] = []  # per stage, the names read after it (built from the last stage back)
        later = set(_WORD.findall(reply))
        for stage in reversed(self.stages):
            read_after.append(later)
            later = later | {word for _, sql in stage for word in _WORD.findall(sql)}
        read_after.reverse()
        available = ["sym"] + [name for tf in self.timeframes.values() for name in tf.outputs]
        scored = "per_symbol"
        for columns, later in zip(self.stages, read_after, strict=True):
            kept = [name for name in available if name in later]
            scored = f"(SELECT {', '.join(kept + [f'{sql} AS {name}' for name, sql in columns])} FROM {scored})"
            available = kept + [name for name, _ in columns]
        return scored

    def timeframe_sql(self, tf: TimeframePlan) -> str:
        """``t0``, ``t1``...: one timeframe's candles in its window, one version each (``FINAL``), grouped per
        symbol into the count, the newest open time and the arrays its fields read, sorted by open time."""
        p = tf.prefix
        starts = [tf.day_ranges[0][0] - 1] if tf.day_ranges else []
        if tf.candles or not starts:  # a timeframe only summed over the last day reads just that day
            starts.append(self.as_of - lookback_ms(self.market, tf.interval, max(tf.candles, 1)))
        tf.from_ms = min(starts)
        interval = self.bind(f"{p}_interval", tf.interval, "String")
        columns = []
        if tf.columns:  # count and newest from the times array: fewer aggregate calls per row
            columns += [f"groupArray(open_time) AS {p}_times", f"length({p}_times) AS {p}_n",
                        f"arrayMax({p}_times) AS {p}_newest"]
        else:
            columns += [f"count() AS {p}_n", f"max(open_time) AS {p}_newest"]
        columns += [f"arraySort((x, k) -> k, groupArray({_ARRAY_COLUMNS[c]}), {p}_times) AS {p}_{c}"
                    for c in sorted(tf.columns)]
        if tf.event_time:
            columns.append(f"argMax(event_time, open_time) AS {p}_event")
        if tf.day_columns:
            columns += [f"sumIfOrNull({_ARRAY_COLUMNS[c]}, {self.day_condition(tf)}) AS {p}_day_{c}"
                        for c in sorted(tf.day_columns)]
        tf.outputs = [column.rsplit(" AS ", 1)[1] for column in columns]
        # PREWHERE: only sorting-key columns, which every version of a candle shares, so filtering before
        # FINAL's merge is exact, and the columns of candles outside the window are never read
        return (f"{p} AS (SELECT symbol, {', '.join(columns)} FROM {self.table} FINAL "
                f"PREWHERE interval = {interval} AND open_time > {self.bind(f'{p}_from', tf.from_ms, 'Int64')} "
                f"AND open_time <= {{as_of:Int64}} GROUP BY symbol)")

    def per_symbol_sql(self) -> str:
        """``per_symbol``: each scanned symbol of the market with every timeframe's columns (a symbol without
        candles of a timeframe has a count of 0 and empty arrays there)."""
        tfs = list(self.timeframes.values())
        joined = tfs[0].prefix + "".join(f" FULL OUTER JOIN {tf.prefix} USING symbol" for tf in tfs[1:])
        outputs = [name for tf in tfs for name in tf.outputs]
        return (f"per_symbol AS (SELECT toString(symbol) AS sym, {', '.join(outputs)} FROM {joined} "
                f"WHERE {self.membership()} AND {self.symbol_filter()('symbol')})")

    def day_condition(self, tf: TimeframePlan) -> str:
        """SQL of "the row is a candle opening in the last day's window" (the ranges bound)."""
        if not tf.day_ranges:
            return "0"
        ranges = [f"(open_time >= {self.bind(f'{tf.prefix}_day{i}_start', start, 'Int64')} AND "
                  f"open_time < {self.bind(f'{tf.prefix}_day{i}_stop', stop, 'Int64')})"
                  for i, (start, stop) in enumerate(tf.day_ranges)]
        return " OR ".join(ranges)

    def reply_sql(self, links: int, page_columns: list[ColumnPlan], sort_alias: str | None, order: str) -> str:
        """The one row out: symbols scanned, symbols left after each link, the page, candles read per timeframe
        (candles, symbols with some, newest open time), the market's listed symbols found."""
        passing = "failed = 0" if links else "1"
        rows = f"groupArrayIf(tuple({', '.join(['sym', *(c.alias for c in page_columns)])}), {passing})"
        if sort_alias is not None:  # no value (NaN) sorts last either way; ties by symbol
            k = 2 + [c.alias for c in page_columns].index(sort_alias)
            ranked = f"arraySort(x -> (isNaN(x.{k}), {'-' if order == 'desc' else ''}x.{k}, x.1), {rows})"
        else:
            ranked = f"{'arrayReverseSort' if order == 'desc' else 'arraySort'}(x -> x.1, {rows})"
        offset = self.bind("page_offset", self.criteria.offset, "UInt32")
        page = f"arraySlice({ranked}, {offset} + 1, {self.bind('page_limit', self.criteria.limit, 'UInt32')})"
        tfs = list(self.timeframes.values())
        # after link i: sumForEach over [failed = 0 OR failed > i], i = 1..links (``failed`` read once)
        left = (f"arrayResize(sumForEach(arrayMap(i -> toUInt64(failed = 0 OR failed > i), range(1, {links + 1}))), "
                f"{links})" if links else "[]")
        return ", ".join([
            "count()", f"{left}::Array(UInt64)", page,
            f"[{', '.join(f'sum({tf.prefix}_n)' for tf in tfs)}]::Array(UInt64)",
            f"[{', '.join(f'countIf({tf.prefix}_n > 0)' for tf in tfs)}]::Array(UInt64)",
            f"[{', '.join(f'max({tf.prefix}_newest)' for tf in tfs)}]::Array(Int64)",
            "groupArrayIf(sym, sym IN {m_universe:Array(String)})"])


def compile_scan(criteria: ScanCriteria, market: Market, markets: MarketRegistry, *, as_of: int,
                 table: str = "klines") -> CompiledScan:
    """The one query answering ``criteria`` on ``market`` as of ``as_of`` (epoch ms)."""
    return _Compiler(criteria, market, markets, as_of, table).compile()
