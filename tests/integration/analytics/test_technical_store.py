"""analyze.stock and evaluate.risk handlers on a real chDB store: the candles they read, their params checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import talib
from conftest import END_MS, Seeded

from tacore.errors import InvalidParams, Unavailable
from tacore.settings import Settings
from workers.methods import analysis, risk
from workers.registry import CallContext, MethodRegistry

DAY = 86_400_000


@pytest.fixture(scope="module")
def methods(seeded: Seeded) -> MethodRegistry:
    settings = Settings(llm_base_url=None, llm_model=None)
    registry = MethodRegistry()
    registry.include(analysis.build_registry(seeded.store, settings))
    registry.include(risk.build_registry(seeded.store, settings))
    return registry


def _call(methods: MethodRegistry, name: str, params: dict[str, Any]) -> Any:
    spec = methods.get(name)
    assert spec is not None
    return spec.invoke(params, CallContext("test", name, "test-worker"))


def test_technical_reads_the_newest_closed_candles_in_time_order(methods: MethodRegistry, seeded: Seeded) -> None:
    reply = _call(methods, "analyze.stock", {"symbol": "aapl", "analysis_type": "technical", "end": END_MS})
    closes = np.array(seeded.closes["AAPL"])
    assert reply["symbol"] == "AAPL" and reply["candles"]["used"] == 300 and reply["status"] == "ok"
    assert reply["candles"]["last_open_time"] == seeded.times["AAPL"][-1]
    assert reply["price"]["close"] == closes[-1] and reply["price"]["live"] is None
    assert reply["indicators"]["rsi_14"] == pytest.approx(talib.RSI(closes, 14)[-1], abs=1e-4)
    assert reply["indicators"]["sma"]["200"] == pytest.approx(talib.SMA(closes, 200)[-1], abs=1e-7)


def test_the_open_candle_is_reported_apart_and_limit_counts_closed_ones(methods: MethodRegistry,
                                                                       seeded: Seeded) -> None:
    reply = _call(methods, "analyze.stock", {"symbol": "BTCUSDT", "limit": 100, "end": END_MS})
    assert reply["candles"]["used"] == 100 and reply["candles"]["last_open_time"] == seeded.times["BTCUSDT"][-1]
    assert reply["price"]["live"] == seeded.live["BTCUSDT"]
    closes = np.array(seeded.closes["BTCUSDT"][-100:])
    assert reply["indicators"]["ema"]["50"] == pytest.approx(talib.EMA(closes, 50)[-1], abs=1e-6)
    assert reply["status"] == "partial" and {m["indicator"] for m in reply["missing"]} == {"sma_200", "ema_200"}


def test_end_analyses_as_of_an_earlier_time(methods: MethodRegistry, seeded: Seeded) -> None:
    end = END_MS - 100 * DAY
    reply = _call(methods, "analyze.stock", {"symbol": "ETHUSDT", "end": end})
    assert reply["candles"]["last_open_time"] <= end
    assert reply["candles"]["last_open_time"] == max(t for t in seeded.times["ETHUSDT"] if t <= end)


def test_unknown_analysis_type_lists_the_known_ones(methods: MethodRegistry) -> None:
    with pytest.raises(InvalidParams) as err:
        _call(methods, "analyze.stock", {"symbol": "AAPL", "analysis_type": "Fundamental"})
    assert err.value.message == "unknown analysis_type 'fundamental'; known: technical, ai"
    assert err.value.details == [{"field": "analysis_type", "message": "must be one of: technical, ai",
                                  "known": ["technical", "ai"]}]


def test_ai_without_an_endpoint_is_unavailable_saying_what_to_set(methods: MethodRegistry) -> None:
    with pytest.raises(Unavailable) as err:
        _call(methods, "analyze.stock", {"symbol": "AAPL", "analysis_type": "ai"})
    assert "set LLM_BASE_URL and LLM_MODEL" in err.value.message


@pytest.mark.parametrize(("params", "field", "says"), [
    ({"symbol": "AAPL", "limit": 6000}, "limit", "less than or equal to 5000"),
    ({"symbol": "no way", "analysis_type": "technical"}, "symbol", "invalid symbol"),
    ({"symbol": "AAPL", "interval": "3d"}, "interval", "one of 1m, 5m"),
    ({"symbol": "AAPL", "colour": "red"}, "colour", "Extra inputs"),
    ({}, "symbol", "Field required"),
])
def test_bad_analysis_params_name_the_field(methods: MethodRegistry, params: dict[str, Any], field: str,
                                           says: str) -> None:
    with pytest.raises(InvalidParams) as err:
        _call(methods, "analyze.stock", params)
    assert any(d["field"] == field and says in d["message"] for d in err.value.details), err.value.details


@pytest.mark.parametrize(("params", "says"), [
    ({}, "give portfolio"),
    ({"portfolio": {}}, "the book is empty"),
    ({"portfolio": {"AAPL": 1}, "weights": {"AAPL": 1}}, "not both"),
    ({"portfolio": {"AAPL": 0}}, "non-zero and at most 1e+15 in size: AAPL"),
    ({"portfolio": {"AAPL": "NaN"}}, "finite"),
    ({"portfolio": {"AAPL": "1e400"}}, "at most 1e+15"),
    ({"weights": {"AAPL": 1}, "notional": "1e16"}, "less than or equal to"),
    ({"portfolio": {"AAPL": "ten"}}, "decimal"),
    ({"portfolio": {"AAPL": 1, "aapl": 2}}, "repeats AAPL"),
    ({"portfolio": {"AAPL": 1}, "notional": 1000}, "notional goes with weights"),
    ({"weights": {"AAPL": 1}, "confidence_levels": [0.95, 1.2]}, "[0.5, 1)"),
    ({"weights": {"AAPL": 1}, "interval": "1m", "lookback_days": 365}, "more than 100000 1m candles"),
    ({"weights": {"AAPL": 1}, "horizon": 0}, "greater than or equal to 1"),
])
def test_bad_risk_params_are_invalid_params_with_details(methods: MethodRegistry, params: dict[str, Any],
                                                         says: str) -> None:
    with pytest.raises(InvalidParams) as err:
        _call(methods, "evaluate.risk", params)
    assert any(says in d["message"] for d in err.value.details), err.value.details


def test_a_symbol_of_no_market_is_invalid_params_naming_it(methods: MethodRegistry) -> None:
    with pytest.raises(InvalidParams) as err:
        _call(methods, "evaluate.risk", {"portfolio": {"AAPL": 1, "BTC123": 2}})
    assert err.value.details[0]["symbol"] == "BTC123" and err.value.details[0]["field"] == "portfolio.BTC123"


def test_the_default_lookback_is_a_year_or_a_thousand_intraday_candles(methods: MethodRegistry) -> None:
    daily = _call(methods, "evaluate.risk", {"portfolio": {"AAPL": 1}, "end": END_MS})
    hourly = _call(methods, "evaluate.risk", {"portfolio": {"AAPL": 1}, "interval": "1h", "end": END_MS})
    assert daily["lookback"]["days"] == 365 and hourly["lookback"]["days"] == pytest.approx(1000 / 24)
    assert hourly["status"] == "insufficient_history"  # no hourly candles were seeded
