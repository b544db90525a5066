"""Scan criteria: the design document's form, the filter chain, and INVALID_PARAMS pointing into the chain."""

from __future__ import annotations

from typing import Any

import pytest

from tacore.analytics.scan_criteria import FieldSpec, Op, ScanCriteria, ScanParams
from tacore.analytics.scan_fields import FIELDS, FieldName
from tacore.errors import InvalidParams
from workers.registry import CallContext, method_spec


def _invalid(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The details of the INVALID_PARAMS a handler taking ScanParams answers ``params`` with."""

    def handler(params: ScanParams) -> None:
        raise AssertionError("the params should not validate")

    spec = method_spec("scan.market", handler, idempotent=True)
    with pytest.raises(InvalidParams) as caught:
        spec.invoke(params, CallContext(None, "scan.market", "w"))
    details: list[dict[str, Any]] = caught.value.details
    return details


def test_design_document_payload_is_accepted_as_written() -> None:
    params = ScanParams.model_validate({"market": "US", "criteria": {"min_volume": 1000000, "price_range": [10, 500]}})
    assert params.market == "US"
    assert params.criteria.min_volume == 1_000_000 and params.criteria.price_range == (10, 500)
    assert ScanParams.model_validate({}).criteria == ScanCriteria()


def test_filters_take_defaults_shorthand_fields_and_every_operator_shape() -> None:
    criteria = ScanCriteria.model_validate({"filters": [
        {"field": "rsi", "op": "less", "value": 30},
        {"field": "price", "op": "crosses_above", "value": {"field": "sma", "period": 50}},
        {"field": "price", "op": "greater", "value": "ema"},
        {"field": "change_pct", "period": 5, "timeframe": "1h", "op": "in_range", "value": [-2, "atr_pct"]},
        {"field": "price", "op": "above%", "value": ["sma", 3]},
        {"field": "price", "op": "not_in_range%", "value": [{"field": "highest", "period": 50}, -5, 0]},
        {"field": "rsi", "op": "nempty"},
    ]})
    rsi, cross, shorthand, ranged, pct, pct_range, present = criteria.filters
    assert rsi.period == 14 and rsi.value == 30.0 and rsi.timeframe is None
    assert cross.value == FieldSpec(field=FieldName.SMA, period=50)
    assert shorthand.value == FieldSpec(field=FieldName.EMA, period=20)
    assert ranged.timeframe == "1h" and ranged.value == (-2.0, FieldSpec(field=FieldName.ATR_PCT, period=14))
    assert pct.op is Op.ABOVE_PCT and pct.value == (FieldSpec(field=FieldName.SMA, period=20), 3.0)
    assert pct_range.value[1:] == (-5.0, 0.0)
    assert present.value is None
    assert all(FIELDS[name].name is name for name in FieldName)


@pytest.mark.parametrize(("filters", "field", "says"), [
    ([{"field": "rsx", "op": "less", "value": 30}], "criteria.filters.0.field", "'rsi'"),
    ([{"field": "rsi", "op": "lesser", "value": 30}], "criteria.filters.0.op", "'crosses_above'"),
    ([{"field": "rsi", "op": "less", "value": "abc"}], "criteria.filters.0.value", "'price'"),
    ([{"field": "rsi", "op": "in_range", "value": [1]}], "criteria.filters.0.value", "[low, high]"),
    ([{"field": "rsi", "op": "in_range", "value": [50, 10]}], "criteria.filters.0.value", "above high"),
    ([{"field": "rsi", "op": "above%", "value": ["sma", "x"]}], "criteria.filters.0.value", "[1] "),
    ([{"field": "rsi", "op": "greater", "value": True}], "criteria.filters.0.value", "number"),
    ([{"field": "rsi", "op": "greater", "value": float("inf")}], "criteria.filters.0.value", "finite"),
    ([{"field": "rsi", "op": "greater"}], "criteria.filters.0.value", "needs a value"),
    ([{"field": "rsi", "op": "empty", "value": 1}], "criteria.filters.0.value", "takes no value"),
    ([{"field": "rsi", "period": 1, "op": "less", "value": 30}], "criteria.filters.0.period", "2..1000"),
    ([{"field": "sma", "period": 10**6, "op": "less", "value": 30}], "criteria.filters.0.period", "2..5000"),
    ([{"field": "price", "period": 3, "op": "less", "value": 30}], "criteria.filters.0.period", "no period"),
    ([{"field": "rsi", "period": 2.5, "op": "less", "value": 30}], "criteria.filters.0.period", "whole number"),
    ([{"field": "rsi", "timeframe": "2m", "op": "less", "value": 30}], "criteria.filters.0.timeframe", "1m, 5m"),
    ([{"field": "candle_age_s", "op": "crosses", "value": 30}], "criteria.filters.0.op", "cannot cross"),
    ([{"field": "price", "op": "crosses", "value": "candle_age_s"}], "criteria.filters.0.value", "cannot cross"),
    ([{"field": "day_quote_volume", "timeframe": "1h", "op": "less", "value": 1}], "criteria.filters.0.timeframe",
     "reads 1m candles"),
    ([{"field": "day_quote_volume", "period": 3, "op": "less", "value": 1}], "criteria.filters.0.period",
     "no period"),
    ([{"field": "day_quote_volume", "op": "crosses", "value": 1}], "criteria.filters.0.op", "cannot cross"),
    ([{"field": "price", "op": "greater", "value": 1, "bars": 3}], "criteria.filters.0.bars", "Extra inputs"),
])
def test_bad_filters_are_invalid_params_pointing_into_the_chain(filters: list[dict[str, Any]], field: str,
                                                                says: str) -> None:
    ok = {"field": "price", "op": "greater", "value": 1}
    chain = [ok, ok, *filters]
    details = _invalid({"market": "CRYPTO", "criteria": {"filters": chain}})
    moved = field.replace("filters.0", "filters.2")
    assert [d["field"] for d in details] == [moved], details
    assert says in details[0]["message"], details


@pytest.mark.parametrize(("criteria", "field"), [
    ({"min_volume": -1}, "criteria.min_volume"),
    ({"min_volume": "1e6"}, "criteria.min_volume"),
    ({"price_range": [500, 10]}, "criteria.price_range"),
    ({"price_range": [10]}, "criteria.price_range.1"),
    ({"timeframe": "1w"}, "criteria.timeframe"),
    ({"sort_by": "volume_24h"}, "criteria.sort_by.field"),
    ({"order": "up"}, "criteria.order"),
    ({"limit": 0}, "criteria.limit"),
    ({"offset": -1}, "criteria.offset"),
    ({"include": ["BTC(?=USDT)"]}, "criteria.include.0"),
    ({"exclude": ["[unclosed"]}, "criteria.exclude.0"),
    ({"filters": [{"field": "price", "op": "greater", "value": 1}] * 33}, "criteria.filters"),
    ({"min_vol": 1}, "criteria.min_vol"),
])
def test_bad_scan_options_are_invalid_params_naming_the_option(criteria: dict[str, Any], field: str) -> None:
    details = _invalid({"market": "US", "criteria": criteria})
    assert [d["field"] for d in details] == [field], details


def test_sort_by_takes_symbol_a_field_name_or_a_field() -> None:
    assert ScanCriteria.model_validate({"sort_by": "symbol"}).sort_by is None
    day = ScanCriteria.model_validate({"timeframe": "4h", "sort_by": "day_quote_volume"}).sort_by
    assert day is not None and day.resolved("4h").timeframe == "1m"  # the last day reads minutes, whatever the scan
    assert ScanCriteria.model_validate({"sort_by": "rsi"}).sort_by == FieldSpec(field=FieldName.RSI, period=14)
    spec = ScanCriteria.model_validate({"sort_by": {"field": "quote_volume", "period": 24, "timeframe": "1h"}}).sort_by
    assert spec == FieldSpec(field=FieldName.QUOTE_VOLUME, period=24, timeframe="1h")
