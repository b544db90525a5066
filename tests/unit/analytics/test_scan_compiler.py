"""The scan compiler: one statement, values only as bound parameters, the chain's columns and windows."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tacore.analytics.scan_criteria import ScanCriteria
from tacore.analytics.scan_sql import compile_scan, day_ms, field_key, lookback_ms
from tacore.errors import InvalidParams
from tacore.markets import MarketRegistry, load_markets
from tacore.markets.calendar import DAY_MS

AS_OF = 1_735_689_600_000  # 2025-01-01T00:00Z


@pytest.fixture(scope="module")
def markets() -> MarketRegistry:
    return load_markets(None)


def _compile(markets: MarketRegistry, raw: dict[str, Any], market: str = "CRYPTO") -> Any:
    return compile_scan(ScanCriteria.model_validate(raw), markets.get(market), markets, as_of=AS_OF)


def test_a_chain_compiles_to_one_statement_reading_each_timeframe_once_with_final(markets: MarketRegistry) -> None:
    scan = _compile(markets, {"min_volume": 1e6, "price_range": [10, 500], "filters": [
        {"field": "rsi", "op": "less", "value": 30}, {"field": "price", "op": "crosses_above", "value": "sma"}]})
    assert scan.sql.startswith("WITH ") and ";" not in scan.sql
    # the last day's 1m volume and the 1d fields: two reads, each of its own interval's partitions
    assert scan.sql.count("FROM klines FINAL") == 2 and scan.sql.count("klines") == 2
    assert [tf.interval for tf in scan.timeframes] == ["1m", "1d"]
    assert "arrayDotProduct" in scan.sql  # Wilder's smoothing in the store, not in Python
    assert [link.source for link in scan.links] == ["criteria.min_volume", "criteria.price_range",
                                                    "criteria.filters.0", "criteria.filters.1"]
    # the page carries each field once (price is used by price_range and the cross), in first-use order
    assert [c.key for c in scan.columns] == ["day_quote_volume", "price", "rsi(14)", "sma(20)"]


def test_request_values_are_bound_parameters_never_sql_text(markets: MarketRegistry) -> None:
    hostile = "'; DROP TABLE klines; --"
    rsi = {"field": "rsi", "period": 9, "op": "less", "value": 31.5}
    scan = _compile(markets, {"min_volume": 123456.5, "price_range": [7.25, 99.5], "include": [re.escape(hostile)],
                              "exclude": ["X.*"], "filters": [rsi], "limit": 7, "offset": 3})
    assert "DROP" not in scan.sql and "123456" not in scan.sql and "31.5" not in scan.sql and "X.*" not in scan.sql
    params = scan.parameters
    assert params["k0"] == 123456.5 and (params["k1_low"], params["k1_high"]) == (7.25, 99.5)
    assert params["k2"] == 31.5 and params["v2_p"] == 9 and params["v2_w"] == 250 and params["v2_need"] == 10
    assert (params["v2_decay"], params["v2_gain"]) == (8 / 9, 1 / 9)
    assert params["page_limit"] == 7 and params["page_offset"] == 3 and params["as_of"] == AS_OF
    assert params["include"] == f"^(?:(?:{re.escape(hostile)}))$" and params["exclude"] == "^(?:(?:X.*))$"
    # every placeholder in the text has a value, and every value is used
    placeholders = set(re.findall(r"\{(\w+):[\w()]+\}", scan.sql))
    assert placeholders == set(params)


def test_identifiers_in_the_sql_come_from_the_whitelists(markets: MarketRegistry) -> None:
    scan = _compile(markets, {"filters": [{"field": name, "op": "nempty"} for name in (
        "price", "volume", "quote_volume", "relative_volume", "change_pct", "volatility", "atr", "atr_pct", "rsi",
        "sma", "ema", "highest", "lowest", "from_high_pct", "from_low_pct", "candle_age_s")]})
    text = re.sub(r"\{\w+:[\w()]+\}", "?", scan.sql)
    text = re.sub(r"'[^']*'", "''", text)  # the only literal: arrayReduce's 'stddevSamp'
    assert "stddevSamp" in scan.sql and not re.search(r"[\"`]", text)


def test_each_timeframe_reads_a_window_long_enough_for_its_longest_field(markets: MarketRegistry) -> None:
    scan = _compile(markets, {"min_volume": 1, "filters": [
        {"field": "sma", "period": 50, "op": "nempty"},
        {"field": "ema", "period": 30, "op": "crosses_above", "value": {"field": "ema", "period": 60}},
        {"field": "change_pct", "period": 12, "timeframe": "1h", "op": "nempty"}]})
    plans = {tf.interval: tf for tf in scan.timeframes}
    assert set(plans) == {"1m", "1d", "1h"}
    # min_volume's last day: a sum over the 1,440 minutes up to as_of, no arrays
    assert plans["1m"].columns == set() and plans["1m"].day_columns == {"q"}
    assert plans["1m"].day_ranges == [(AS_OF - DAY_MS, AS_OF)] and plans["1m"].from_ms == AS_OF - DAY_MS - 1
    assert "sumIfOrNull(quote_volume, " in scan.sql and "groupArrayIf(quote_volume" not in scan.sql
    assert plans["1d"].candles == 601  # ema(60) reads max(10 * 60, 250) candles, +1 for the previous value
    assert plans["1h"].candles == 13 and plans["1h"].columns == {"c"}
    for tf in scan.timeframes[1:]:
        assert tf.from_ms == AS_OF - lookback_ms(markets.get("CRYPTO"), tf.interval, tf.candles)
    assert AS_OF - plans["1d"].from_ms == 2 * 601 * DAY_MS + DAY_MS


def test_the_design_documents_last_day_is_a_sessions_trading_time_of_minute_candles(
        markets: MarketRegistry) -> None:
    assert day_ms(markets.get("CRYPTO")) == DAY_MS
    assert day_ms(markets.get("US")) == 390 * 60_000  # the regular NYSE session, not the early closes
    us = _compile(markets, {"min_volume": 1e6}, market="US")
    assert us.columns[0].key == "day_quote_volume" and us.columns[0].candles_read == 390
    # as of New Year's Day 2025 (a holiday): the session of 2024-12-31, 14:30-21:00 UTC, bound as parameters
    session = (AS_OF - DAY_MS + 870 * 60_000, AS_OF - 3 * 3_600_000)
    assert (us.parameters["t0_day0_start"], us.parameters["t0_day0_stop"]) == session
    assert "t0_day1_start" not in us.parameters and us.timeframes[0].from_ms == session[0] - 1
    # a session market's window also spans weekends and holidays
    assert lookback_ms(markets.get("US"), "1d", 10) > lookback_ms(markets.get("CRYPTO"), "1d", 10) + 3 * DAY_MS


def test_field_keys_name_period_and_a_timeframe_other_than_the_scans(markets: MarketRegistry) -> None:
    criteria = ScanCriteria.model_validate({"timeframe": "4h", "filters": [
        {"field": "rsi", "op": "nempty"}, {"field": "price", "timeframe": "1d", "op": "nempty"}]})
    keys = [field_key(f.resolved("4h"), "4h") for f in criteria.filters]
    assert keys == ["rsi(14)", "price@1d"]


def test_sorting_by_a_field_adds_its_column_and_orders_nulls_last(markets: MarketRegistry) -> None:
    scan = _compile(markets, {"filters": [{"field": "price", "op": "greater", "value": 1}], "sort_by": "volatility"})
    assert scan.sort_key == "volatility(20)" and scan.order == "desc"
    assert "isNaN(x.3), -x.3, x.1" in scan.sql
    ascending = _compile(markets, {"sort_by": "symbol", "order": "desc"})
    assert ascending.sort_key is None and "arrayReverseSort(x -> x.1" in ascending.sql


def test_membership_follows_market_of_declaration_order(markets: MarketRegistry) -> None:
    us = _compile(markets, {}, market="US")
    assert us.parameters["m_pattern"] == f"^(?:{markets.get('US').symbol_pattern})$"
    assert us.parameters["m_pattern_before0"] == f"^(?:{markets.get('CRYPTO').symbol_pattern})$"
    assert "BTCUSDT" in us.parameters["m_listed_other"] and "AAPL" in us.parameters["m_universe"]
    crypto = _compile(markets, {})
    assert not any(name.startswith("m_pattern_before") for name in crypto.parameters)


def test_an_unknown_market_is_invalid_params_listing_the_known_ones(markets: MarketRegistry) -> None:
    with pytest.raises(InvalidParams) as caught:
        markets.get("FX")
    assert caught.value.details[0]["known"] == ["CRYPTO", "US"]
