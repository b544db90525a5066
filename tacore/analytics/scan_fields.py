"""The fields a market scan filters and sorts on, each a ClickHouse expression over one symbol's candles.

A scan gathers, per symbol and timeframe, the candles of a lookback window as arrays sorted by open
time (``t0_c`` closes, ``t0_h`` highs, ``t0_l`` lows, ``t0_v`` base volumes, ``t0_q`` quote volumes).
Every field is an expression over those arrays that yields one number per symbol, so the store
computes a whole scan in one query and no candle leaves it. The field over "the last day"
(``day_quote_volume``) is instead a plain sum over a time window of 1m candles (``t0_day_q``), taken while
grouping: a sum needs no sorted arrays, and gathering a day of minutes into them was most of a scan's
cost. A symbol with fewer candles than a field needs has no value for it (NaN in the query, null in the
reply), which fails every filter but ``empty``.
Every expression is safe on any number of candles (arrays zipped by a lambda always have one length),
because the compiler evaluates them on every symbol: branching per row costs more than the work.

RSI, ATR and EMA are TA-Lib's definitions (a simple-average seed over the oldest candles, then Wilder's
or the exponential smoothing) over the last ``warmup_candles(period)`` candles of the symbol, so they
equal ``talib.RSI``/``ATR``/``EMA`` run on those same candles. The smoothing is evaluated in closed form,
a dot product with the decay's powers, rather than folded step by step: ``arrayFold`` costs a fixed
amount per step, and the two agree with TA-Lib to ~1e-14 relative. The names and defaults follow the
screener fields traders know (TradingView's RSI 14, relative volume over 10 bars, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

#: The longest window any field may ask for, in candles.
MAX_PERIOD = 5000
#: Smoothed indicators (RSI, ATR, EMA) read up to ``warmup_candles(period)`` candles, so at most this many.
MAX_SMOOTHED_PERIOD = 1000


def smoothing_factors(kind: str, period: int) -> tuple[float, float]:
    """(decay, gain) of ``avg = avg * decay + x * gain``: Wilder's ``(avg * (p - 1) + x) / p`` or the EMA's
    ``(x - avg) * k + avg``, ``k = 2 / (p + 1)``, as TA-Lib defines them."""
    if kind == "wilder":
        return (period - 1) / period, 1 / period
    k = 2 / (period + 1)
    return 1 - k, k


def warmup_candles(period: int) -> int:
    """Candles a smoothed indicator is computed over when the symbol has that many: its seed then at least
    ten periods (and 250 candles) of smoothing, after which the start's influence is below 1e-8."""
    return max(10 * period, 250)


class FieldName(StrEnum):
    PRICE = "price"
    VOLUME = "volume"
    QUOTE_VOLUME = "quote_volume"
    RELATIVE_VOLUME = "relative_volume"
    CHANGE_PCT = "change_pct"
    VOLATILITY = "volatility"
    ATR = "atr"
    ATR_PCT = "atr_pct"
    RSI = "rsi"
    SMA = "sma"
    EMA = "ema"
    HIGHEST = "highest"
    LOWEST = "lowest"
    FROM_HIGH_PCT = "from_high_pct"
    FROM_LOW_PCT = "from_low_pct"
    CANDLE_AGE_S = "candle_age_s"
    DAY_QUOTE_VOLUME = "day_quote_volume"


@dataclass(frozen=True, slots=True)
class Frame:
    """One timeframe's candle arrays as of ``offset`` candles ago (1: the previous candle, for crosses)."""

    prefix: str
    offset: int = 0

    def arr(self, column: str) -> str:
        name = f"{self.prefix}_{column}"
        return f"arrayPopBack({name})" if self.offset else name

    @property
    def count(self) -> str:
        return f"({self.prefix}_n - {self.offset})" if self.offset else f"{self.prefix}_n"

    @property
    def event_time(self) -> str:
        return f"{self.prefix}_event"

    def day(self, column: str) -> str:
        """The sum of ``column`` over the candles opening in the last day's time window (NULL: none)."""
        return f"{self.prefix}_day_{column}"


@dataclass(frozen=True, slots=True)
class Slots:
    """Query-parameter placeholders a field's expression may use; the compiler binds those it does."""

    period: str
    warmup: str
    #: the smoothing's ``avg = avg * decay + x * gain`` (``smoothing_factors``)
    decay: str
    gain: str
    #: the smoothing's weights for the longest tail (``smoothing_weights``)
    weights: str
    as_of: str
    bars_per_year: str


def let(bindings: dict[str, str], body: str) -> str:
    """``body`` with each name bound to its expression, each written (and so planned) once:
    ``arrayMap((name, ...) -> body, [expr], ...)[1]``. ClickHouse's analyzer names every expression by its
    whole tree, through subqueries and aliases, so an expression read twice doubles the names of everything
    above it: a chain of such reads made the scan's plan names hundreds of kilobytes and its planning cost
    more CPU than reading the candles. Names are ``_``-prefixed lambda arguments, never column names.

    A name bound to a plain name or a query parameter (``v1``, ``{k0:Float64}``) is written in its place
    instead: it has nothing to plan twice, and each lambda costs analysis of its own (with the fields'
    ``ifNotFinite``, the benchmark's scan planned in ~30 ms of CPU instead of ~35)."""
    kept = {}
    for name, sql in bindings.items():
        if _PLAIN.fullmatch(sql):
            body = re.sub(rf"(?<![\w.]){re.escape(name)}\b", sql.replace("\\", "\\\\"), body)
        else:
            kept[name] = sql
    if not kept:
        return body
    names = ", ".join(kept)
    return f"arrayMap(({names}) -> {body}, {', '.join(f'[{sql}]' for sql in kept.values())})[1]"


#: what ``let`` writes in place: a column or lambda argument name, or a query parameter placeholder
_PLAIN = re.compile(r"[A-Za-z_]\w*|\{\w+:[\w()]+\}")


#: (stages of named intermediate values, value expression): stage k may read the names of stages before
#: it; the value, the names of every stage. The compiler binds them as lambda arguments (``let``), so each
#: is written, and planned, once.
Expression = tuple[list[list[tuple[str, str]]], str]
Builder = Callable[[Frame, Slots, str], Expression]


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: FieldName
    summary: str
    #: candle arrays the expression reads: c(lose), h(igh), l(ow), v(olume), q(uote volume)
    columns: frozenset[str]
    build: Builder
    #: None: the field takes no period
    default_period: int | None = None
    min_period: int = 1
    max_period: int = MAX_PERIOD
    #: candles needed beyond the period (``period + extra``; ``extra`` alone without a period)
    extra: int = 0
    #: "wilder" or "ema": a smoothed indicator, read over ``warmup_candles(period)`` candles
    smoothing: str | None = None
    crossable: bool = True
    #: candle columns summed over the last day's time window while grouping (``Frame.day``), not gathered
    day_columns: frozenset[str] = frozenset()
    #: the one timeframe the field reads, whatever the scan's (None: the scan's or the one asked)
    timeframe: str | None = None

    def min_candles(self, period: int | None) -> int:
        return (period or 0) + self.extra

    def candles_read(self, period: int | None) -> int:
        """Candles the expression looks at, at most (the lookback window holds at least these)."""
        if self.smoothing and period is not None:
            return warmup_candles(period)
        return self.min_candles(period)



# -- expressions ----------------------------------------------------------------------------------------
def _price(f: Frame, s: Slots, a: str) -> Expression:
    return [], f"{f.arr('c')}[-1]"


def _sum_of(column: str) -> Builder:
    def build(f: Frame, s: Slots, a: str) -> Expression:
        return [], f"arraySum(arraySlice({f.arr(column)}, -{s.period}))"

    return build


def _relative_volume(f: Frame, s: Slots, a: str) -> Expression:
    v = f.arr("v")
    return [], f"{v}[-1] / arrayAvg(arraySlice({v}, -{s.period} - 1, {s.period}))"


def _change_pct(f: Frame, s: Slots, a: str) -> Expression:
    c = f.arr("c")
    return [], f"100 * ({c}[-1] - {c}[-1 - {s.period}]) / {c}[-1 - {s.period}]"


def _volatility(f: Frame, s: Slots, a: str) -> Expression:
    """Annualised standard deviation (sample) of the last ``period`` log returns, in percent."""
    closes = f"arraySlice({f.arr('c')}, -{s.period} - 1)"
    returns = let({"_c": closes}, "arrayMap((x, y) -> log(y / x), arrayPopBack(_c), arrayPopFront(_c))")
    return [], f"arrayReduce('stddevSamp', {returns}) * sqrt({s.bars_per_year}) * 100"


def smoothing_weights(decay: float, period: int) -> str:
    """``decay^(M-1) .. decay^0`` for the longest tail a smoothed field of ``period`` smooths
    (``M = warmup_candles(period) - period``), bound as a query parameter: a symbol's weights are its last
    ``m`` (``Slots.weights``), so no symbol computes powers and ClickHouse analyses no lambda for them.
    Written as the parameter's text (``[w, ...]``, ``repr`` round-trips a float exactly): the client's
    generic formatting of a list of hundreds of floats cost about a millisecond per scan."""
    return "[" + ",".join(repr(decay**j) for j in reversed(range(warmup_candles(period) - period))) + "]"


def _weights(a: str, count: str, s: Slots) -> tuple[str, str]:
    """The column of smoothing weights ``decay^(m-1) .. decay^0`` for a series of ``count`` values (SQL), whose
    first ``period`` seed the average and whose ``m = count - period`` others are smoothed: the bound weights'
    last ``m``."""
    return f"{a}_wt", f"arraySlice({s.weights}, length({s.weights}) + 1 - greatest({count} - {s.period}, 0))"


def _smoothed(a: str, seed: str, tail: str, p: str, decay: str, gain: str) -> str:
    """TA-Lib's seeded smoothing in closed form: the seed's sum averaged, then ``avg = avg * decay + x * gain``
    over the tail, i.e. ``decay^m * seed / p + gain * sum(decay^(m - j) * x_j)``: one vectorised dot product
    rather than a fold (``arrayFold`` pays a fixed cost per step)."""
    return let({"_wt": f"{a}_wt"}, f"pow({decay}, length(_wt)) * {seed} / {p} + {gain} * arrayDotProduct({tail}, _wt)")


def _rsi(f: Frame, s: Slots, a: str) -> Expression:
    """TA-Lib's RSI: gains and losses of the first ``period`` changes averaged, then Wilder's smoothing per
    change; ``100 * gain / (gain + loss)``, 0 when both are (nearly) zero.

    Written as the smoothing of the signed change ``x`` and of its size ``y``: a gain is ``(|d| + d) / 2`` and
    a loss ``(|d| - d) / 2``, so the smoothed gain is ``(y + x) / 2``, the loss ``(y - x) / 2`` and the RSI
    ``50 + 50 * x / y``. Two smoothings of plain arrays instead of four of mapped ones: fewer lambdas for
    ClickHouse to analyse, which is what a scan's planning time is made of (``docs/analytics.md``)."""
    p = s.period
    changes = f"arrayPopFront(arrayDifference(arraySlice({f.arr('c')}, -{s.warmup})))"
    head, tail = f"arraySlice(_d, 1, {p})", f"arraySlice(_d, {p} + 1)"
    signed = _smoothed(a, f"arraySum({head})", tail, p, s.decay, s.gain)
    size = _smoothed(a, f"L1Norm({head})", f"arrayMap(x -> abs(x), {tail})", p, s.decay, s.gain)
    stages = [[(f"{a}_d", changes), _weights(a, f"least({f.count}, {s.warmup}) - 1", s)],
              [(f"{a}_xy", let({"_d": f"{a}_d"}, f"({signed}, {size})"))]]
    return stages, let({"_xy": f"{a}_xy"}, "if(_xy.2 < 1e-8, 0., 50 + 50 * (_xy.1 / _xy.2))")


def _ema(f: Frame, s: Slots, a: str) -> Expression:
    """TA-Lib's EMA: the simple average of the first ``period`` closes, then ``(x - ema) * k + ema``,
    ``k = 2 / (period + 1)``."""
    p = s.period
    closes = f"arraySlice({f.arr('c')}, -{s.warmup})"
    stages = [[(f"{a}_s", closes), _weights(a, f"least({f.count}, {s.warmup})", s)]]
    return stages, let({"_s": f"{a}_s"}, _smoothed(a, f"arraySum(arraySlice(_s, 1, {p}))", f"arraySlice(_s, {p} + 1)",
                                                   p, s.decay, s.gain))


def _atr(f: Frame, s: Slots, a: str) -> Expression:
    """TA-Lib's ATR: true ranges from the second candle, their simple average over the first ``period``,
    then Wilder's smoothing."""
    p, w = s.period, s.warmup
    h, low, c = (f"arraySlice({f.arr(x)}, -{w})" for x in ("h", "l", "c"))
    ranges = (f"arrayMap((hi, lo, pc) -> greatest(hi - lo, abs(pc - hi), abs(pc - lo)), "
              f"arrayPopFront({h}), arrayPopFront({low}), arrayPopBack({c}))")
    stages = [[(f"{a}_tr", ranges), _weights(a, f"least({f.count}, {w}) - 1", s)]]
    return stages, let({"_tr": f"{a}_tr"}, _smoothed(a, f"arraySum(arraySlice(_tr, 1, {p}))",
                                                     f"arraySlice(_tr, {p} + 1)", p, s.decay, s.gain))


def _atr_pct(f: Frame, s: Slots, a: str) -> Expression:
    stages, atr = _atr(f, s, a)
    return stages, f"100 * ({atr}) / {f.arr('c')}[-1]"


def _sma(f: Frame, s: Slots, a: str) -> Expression:
    return [], f"arrayAvg(arraySlice({f.arr('c')}, -{s.period}))"


def _highest(f: Frame, s: Slots, a: str) -> Expression:
    return [], f"arrayMax(arraySlice({f.arr('h')}, -{s.period}))"


def _lowest(f: Frame, s: Slots, a: str) -> Expression:
    return [], f"arrayMin(arraySlice({f.arr('l')}, -{s.period}))"


def _from_extreme(extreme: Builder) -> Builder:
    def build(f: Frame, s: Slots, a: str) -> Expression:
        _, level = extreme(f, s, a)
        return [], let({"_lv": level}, f"100 * ({f.arr('c')}[-1] - _lv) / _lv")

    return build


def _day_sum(column: str) -> Builder:
    def build(f: Frame, s: Slots, a: str) -> Expression:
        return [], f"ifNull({f.day(column)}, nan)"

    return build


def _candle_age(f: Frame, s: Slots, a: str) -> Expression:
    return [], f"greatest(0, {s.as_of} - {f.event_time}) / 1000"


_C, _HLC = frozenset("c"), frozenset("hlc")
FIELDS: dict[FieldName, FieldDef] = {d.name: d for d in (
    FieldDef(FieldName.PRICE, "last price: the close of the newest candle", _C, _price, extra=1),
    FieldDef(FieldName.VOLUME, "base volume over the last `period` candles", frozenset("v"), _sum_of("v"), 1),
    FieldDef(FieldName.QUOTE_VOLUME, "traded value in the quote currency over the last `period` candles",
             frozenset("q"), _sum_of("q"), 1),
    FieldDef(FieldName.RELATIVE_VOLUME, "volume of the newest candle / average volume of the `period` before it",
             frozenset("v"), _relative_volume, 10, extra=1),
    FieldDef(FieldName.CHANGE_PCT, "% change of the close over the last `period` candles", _C, _change_pct, 1,
             extra=1),
    FieldDef(FieldName.VOLATILITY, "annualised std of the last `period` log returns, %", _C, _volatility, 20,
             min_period=2, extra=1),
    FieldDef(FieldName.ATR, "average true range (TA-Lib ATR)", _HLC, _atr, 14, extra=1, smoothing="wilder",
             max_period=MAX_SMOOTHED_PERIOD),
    FieldDef(FieldName.ATR_PCT, "ATR as % of the last price", _HLC, _atr_pct, 14, extra=1, smoothing="wilder",
             max_period=MAX_SMOOTHED_PERIOD),
    FieldDef(FieldName.RSI, "relative strength index (TA-Lib RSI, Wilder's smoothing)", _C, _rsi, 14, min_period=2,
             extra=1, smoothing="wilder", max_period=MAX_SMOOTHED_PERIOD),
    FieldDef(FieldName.SMA, "simple moving average of the close", _C, _sma, 20, min_period=2),
    FieldDef(FieldName.EMA, "exponential moving average of the close (TA-Lib EMA)", _C, _ema, 20, min_period=2,
             smoothing="ema", max_period=MAX_SMOOTHED_PERIOD),
    FieldDef(FieldName.HIGHEST, "highest high of the last `period` candles", frozenset("h"), _highest, 20),
    FieldDef(FieldName.LOWEST, "lowest low of the last `period` candles", frozenset("l"), _lowest, 20),
    FieldDef(FieldName.FROM_HIGH_PCT, "% from the highest high of the last `period` candles (<= 0)",
             frozenset("hc"), _from_extreme(_highest), 20),
    FieldDef(FieldName.FROM_LOW_PCT, "% from the lowest low of the last `period` candles (>= 0)",
             frozenset("lc"), _from_extreme(_lowest), 20),
    FieldDef(FieldName.CANDLE_AGE_S, "seconds since the newest candle's last update (its event time)", frozenset(),
             _candle_age, extra=1, crossable=False),
    FieldDef(FieldName.DAY_QUOTE_VOLUME, "traded value in the quote currency over the last day (a time window of "
             "1m candles: 1,440 minutes on a 24/7 market, a regular session's trading time on a session market)",
             frozenset(), _day_sum("q"), extra=1, crossable=False, day_columns=frozenset("q"), timeframe="1m"),
)}
