"""What a market scan asks: an ordered chain of ``{field, op, value}`` filters, sorting and paging.

The chain is freqtrade's pairlist idea (filters applied in order, each dropping symbols) with the
operator names of TradingView's screener. The design document's short form (``min_volume``,
``price_range``) is kept and becomes the first links of the chain. Every value is checked here, so a
bad one is INVALID_PARAMS pointing into the chain (``criteria.filters.2.value``) before any SQL exists.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from tacore.analytics.scan_fields import FIELDS, FieldName
from tacore.intervals import INTERVALS, MAX_TIME_MS

MAX_FILTERS = 32
MAX_LIMIT = 1000
MAX_OFFSET = 100_000
MAX_PATTERNS = 50


class Op(StrEnum):
    """TradingView screener operators (``above%`` etc. take percentages: ``[ref, 3]`` is 3 % above ref)."""

    GREATER = "greater"
    EGREATER = "egreater"
    LESS = "less"
    ELESS = "eless"
    EQUAL = "equal"
    NEQUAL = "nequal"
    IN_RANGE = "in_range"
    NOT_IN_RANGE = "not_in_range"
    CROSSES = "crosses"
    CROSSES_ABOVE = "crosses_above"
    CROSSES_BELOW = "crosses_below"
    ABOVE_PCT = "above%"
    BELOW_PCT = "below%"
    IN_RANGE_PCT = "in_range%"
    NOT_IN_RANGE_PCT = "not_in_range%"
    EMPTY = "empty"
    NEMPTY = "nempty"


COMPARISONS = frozenset({Op.GREATER, Op.EGREATER, Op.LESS, Op.ELESS, Op.EQUAL, Op.NEQUAL})
RANGES = frozenset({Op.IN_RANGE, Op.NOT_IN_RANGE})
CROSSES = frozenset({Op.CROSSES, Op.CROSSES_ABOVE, Op.CROSSES_BELOW})
PERCENTS = frozenset({Op.ABOVE_PCT, Op.BELOW_PCT})
PERCENT_RANGES = frozenset({Op.IN_RANGE_PCT, Op.NOT_IN_RANGE_PCT})
PRESENCE = frozenset({Op.EMPTY, Op.NEMPTY})


def _number(value: Any) -> Any:
    """Numbers only: JSON strings and booleans are not read as numbers."""
    if isinstance(value, bool | str):
        raise ValueError("must be a number")
    return value


def _interval(value: Any) -> Any:
    if value is not None and value not in INTERVALS:
        raise ValueError(f"must be one of {', '.join(INTERVALS)}")
    return value


Number = Annotated[float, Field(allow_inf_nan=False), BeforeValidator(_number)]
Interval = Annotated[str | None, BeforeValidator(_interval)]


class FieldSpec(BaseModel):
    """A field with its window (``period`` candles) on a timeframe (the scan's when omitted)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: FieldName
    period: int | None = Field(default=None, validate_default=True)
    timeframe: Interval = None

    @field_validator("period", mode="before")
    @classmethod
    def _period(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.data.get("field")
        if name is None:
            return value
        spec = FIELDS[name]
        if spec.default_period is None:
            if value is not None:
                raise ValueError(f"{name} takes no period")
            return None
        if value is None:
            return spec.default_period
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be a whole number of candles")
        if not spec.min_period <= value <= spec.max_period:
            raise ValueError(f"{name} period must be {spec.min_period}..{spec.max_period} candles")
        return value

    @field_validator("timeframe")
    @classmethod
    def _fixed_timeframe(cls, value: str | None, info: ValidationInfo) -> str | None:
        name = info.data.get("field")
        fixed = FIELDS[name].timeframe if name is not None else None
        if value is not None and fixed is not None and value != fixed:
            raise ValueError(f"{name} reads {fixed} candles")
        return value

    def resolved(self, timeframe: str) -> FieldSpec:
        """With its timeframe set: the field's own, else the one asked, else the scan's ``timeframe``."""
        if self.timeframe:
            return self
        return self.model_copy(update={"timeframe": FIELDS[self.field].timeframe or timeframe})


def _field_shorthand(value: Any) -> Any:
    """``"sma"`` stands for ``{"field": "sma"}`` (its default period)."""
    return {"field": value} if isinstance(value, str) else value


Operand = Annotated[Number | FieldSpec, BeforeValidator(_field_shorthand)]

_SHAPES: dict[frozenset[Op], tuple[TypeAdapter[Any], str]] = {
    COMPARISONS | CROSSES: (TypeAdapter(Operand), "a number or a field"),
    RANGES: (TypeAdapter(tuple[Operand, Operand]), "[low, high], each a number or a field"),
    PERCENTS: (TypeAdapter(tuple[Operand, Number]), "[reference, percent]: a number or a field, then a number"),
    PERCENT_RANGES: (TypeAdapter(tuple[Operand, Number, Number]),
                     "[reference, low percent, high percent]: a number or a field, then two numbers"),
}


def _shape_of(op: Op) -> tuple[TypeAdapter[Any], str] | None:
    for ops, shape in _SHAPES.items():
        if op in ops:
            return shape
    return None


def _first_error(exc: ValidationError, value: Any) -> str:
    """The first problem, named by its element (``[1]``) and, for a field given as an object or a name,
    what is wrong with it (rather than that it is not a number)."""
    errors = exc.errors(include_url=False)

    def given_as_field(loc: tuple[int | str, ...]) -> bool:
        index = loc[0] if loc and isinstance(loc[0], int) else None
        item = value[index] if index is not None and isinstance(value, list | tuple) and index < len(value) else value
        return "FieldSpec" in loc and isinstance(item, dict | str)

    err = next((e for e in errors if given_as_field(e["loc"])), errors[0])
    loc = err["loc"]
    index = next((f"[{p}] " for p in loc if isinstance(p, int)), "")
    if "FieldSpec" in loc:
        key = loc[-1] if isinstance(loc[-1], str) and loc[-1] != "FieldSpec" else ""
        return f"{index}{key + ': ' if key else ''}{err['msg']}"
    return f"{index}{err['msg']}"


class Filter(FieldSpec):
    """One link of the chain: keep the symbols whose ``field`` satisfies ``op`` ``value``."""

    op: Op
    value: Any = Field(default=None, validate_default=True)

    @field_validator("op")
    @classmethod
    def _crossable(cls, op: Op, info: ValidationInfo) -> Op:
        name = info.data.get("field")
        if op in CROSSES and name is not None and not FIELDS[name].crossable:
            raise ValueError(f"{name} cannot cross: it has no previous value")
        return op

    @field_validator("value")
    @classmethod
    def _value_shape(cls, value: Any, info: ValidationInfo) -> Any:
        op = info.data.get("op")
        if op is None:
            return value
        if op in PRESENCE:
            if value is not None:
                raise ValueError(f"{op} takes no value")
            return None
        if value is None:
            raise ValueError(f"{op} needs a value")
        shape = _shape_of(op)
        assert shape is not None
        adapter, expected = shape
        try:
            parsed = adapter.validate_python(value)
        except ValidationError as exc:
            raise ValueError(f"{op} takes {expected} ({_first_error(exc, value)})") from None
        _check_operands(op, parsed)
        return parsed


def _operands(op: Op, value: Any) -> list[Any]:
    return list(value) if isinstance(value, tuple) else [value]


def _check_operands(op: Op, value: Any) -> None:
    for operand in _operands(op, value):
        if op in CROSSES and isinstance(operand, FieldSpec) and not FIELDS[operand.field].crossable:
            raise ValueError(f"{operand.field} cannot cross: it has no previous value")
    if op in RANGES and all(isinstance(x, float) for x in value) and value[0] > value[1]:
        raise ValueError(f"{op}: low {value[0]} is above high {value[1]}")
    if op in PERCENT_RANGES and value[1] > value[2]:
        raise ValueError(f"{op}: low percent {value[1]} is above high percent {value[2]}")


_RE2_UNSUPPORTED = re.compile(r"\(\?[=!<>]|\(\?P=|\\[1-9]|\\Z|[*+?}]\+")


def _pattern(value: Any) -> Any:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise ValueError("must be a regular expression of 1..200 characters")
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    if _RE2_UNSUPPORTED.search(value):
        raise ValueError("lookarounds, backreferences, possessive quantifiers and \\Z are not supported (RE2 syntax)")
    return value


SymbolPattern = Annotated[str, BeforeValidator(_pattern)]
def _sort_key(value: Any) -> Any:
    """``"symbol"`` (the default order) or a field, by name or as an object."""
    return None if value == "symbol" else _field_shorthand(value)


SortKey = Annotated[FieldSpec | None, BeforeValidator(_sort_key)]


class ScanCriteria(BaseModel):
    """The ``criteria`` of ``scan.market``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the design document's short form: traded value in the quote currency over the last day, at least
    min_volume: Number | None = Field(default=None, ge=0)
    #: the design document's short form: last price within [low, high]
    price_range: tuple[Number, Number] | None = None
    filters: list[Filter] = Field(default_factory=list, max_length=MAX_FILTERS)
    timeframe: Interval = "1d"
    #: a field (by name or as an object) or "symbol" (the default)
    sort_by: SortKey = None
    order: Literal["asc", "desc"] | None = None
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    #: regular expressions (full match, RE2): keep only symbols matching one of them
    include: list[SymbolPattern] = Field(default_factory=list, max_length=MAX_PATTERNS)
    #: regular expressions (full match, RE2): drop symbols matching any of them
    exclude: list[SymbolPattern] = Field(default_factory=list, max_length=MAX_PATTERNS)
    #: epoch ms the scan looks from (default: now); candles opening after it are not read
    as_of: int | None = Field(default=None, ge=0, le=MAX_TIME_MS)

    @field_validator("timeframe", mode="after")
    @classmethod
    def _timeframe_set(cls, value: str | None) -> str:
        if value is None:
            raise ValueError(f"must be one of {', '.join(INTERVALS)}")
        return value

    @field_validator("price_range")
    @classmethod
    def _range_order(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError(f"low {value[0]} is above high {value[1]}")
        return value


class ScanParams(BaseModel):
    """``scan.market`` params: the design document's ``{"market": "US", "criteria": {...}}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: a market declared in trading_config.yaml (case-insensitive); the default market when omitted
    market: str | None = Field(default=None, min_length=1, max_length=32)
    criteria: ScanCriteria = ScanCriteria()
