"""evaluate_risk on a real chDB store, checked against empyrical on returns the test rebuilds itself (pandas)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import empyrical
import numpy as np
import pandas as pd
import pytest
from conftest import END_MS, Seeded

from tacore.analytics.risk import Holding, RiskRequest, evaluate_risk
from tacore.markets import MarketRegistry, load_markets
from tests.support.processes import ROOT

DAY = 86_400_000
BENCHMARKS = {"US": "SPY", "CRYPTO": "BTCUSDT"}


@pytest.fixture(scope="module")
def markets() -> MarketRegistry:
    return load_markets(ROOT / "config" / "trading_config.yaml")


def _frame(seeded: Seeded, symbol: str, lookback_days: float = 365) -> pd.DataFrame:
    start = END_MS - int(lookback_days * DAY)
    times = np.array(seeded.times[symbol])
    keep = times >= start
    return pd.DataFrame({"t": times[keep] + DAY - 1, symbol: np.array(seeded.closes[symbol])[keep]})


def _request(book: dict[str, Any], **options: Any) -> RiskRequest:
    holdings = [Holding(s, quantity=Decimal(str(q))) for s, q in book.items()]
    return RiskRequest(holdings=holdings, end_ms=END_MS, default_benchmarks=BENCHMARKS, **options)


def _check_against_empyrical(reply: dict[str, Any], returns: np.ndarray, bpy: float) -> None:
    assert reply["lookback"]["returns_used"] == returns.size
    assert reply["volatility"]["annualised"] == pytest.approx(empyrical.annual_volatility(returns, annualization=bpy),
                                                              rel=1e-8)
    assert reply["sharpe"] == pytest.approx(empyrical.sharpe_ratio(returns, annualization=bpy), rel=1e-7)
    assert reply["sortino"] == pytest.approx(empyrical.sortino_ratio(returns, annualization=bpy), rel=1e-7)
    assert reply["drawdown"]["max"] == pytest.approx(-empyrical.max_drawdown(returns), rel=1e-8)
    by_level = {row["confidence"]: row for row in reply["var"]}
    for c in (0.95, 0.99):
        hist = by_level[c]["historical"]
        assert hist["var"] == pytest.approx(-empyrical.value_at_risk(returns, cutoff=1 - c), rel=1e-8)
        assert hist["cvar"] == pytest.approx(-empyrical.conditional_value_at_risk(returns, cutoff=1 - c), rel=1e-8)


def test_design_document_book_of_quantities_matches_empyrical(seeded: Seeded, markets: MarketRegistry) -> None:
    reply = evaluate_risk(seeded.store, markets, _request({"AAPL": 100, "GOOGL": 50}))
    assert reply["status"] == "ok" and reply["insufficient_history"] == []
    last = {s: seeded.closes[s][-1] for s in ("AAPL", "GOOGL")}
    values = {"AAPL": 100 * last["AAPL"], "GOOGL": 50 * last["GOOGL"]}
    total = sum(values.values())
    positions = {p["symbol"]: p for p in reply["positions"]}
    for symbol, value in values.items():
        assert positions[symbol]["market_value"] == pytest.approx(value)
        assert positions[symbol]["weight"] == pytest.approx(value / total)
        assert positions[symbol]["price"] == last[symbol] and positions[symbol]["currency"] == "USD"
    assert positions["AAPL"]["quantity"] == "100"
    assert reply["total"]["market_value"] == pytest.approx(total) and reply["currency"] == "USD"

    frame = _frame(seeded, "AAPL").merge(_frame(seeded, "GOOGL"), on="t")
    rets = frame[["AAPL", "GOOGL"]].pct_change().dropna().to_numpy()
    weights = np.array([values["AAPL"], values["GOOGL"]]) / total
    book = rets @ weights
    bpy = markets.get("US").bars_per_year("1d")
    assert reply["lookback"]["bars_per_year"] == pytest.approx(bpy, rel=1e-6)
    assert reply["lookback"]["anchor_market"] == "US"
    _check_against_empyrical(reply, book, bpy)
    bench = _frame(seeded, "AAPL").merge(_frame(seeded, "SPY"), on="t")["SPY"].pct_change().dropna().to_numpy()
    assert reply["beta"]["benchmark"] == "SPY"
    assert reply["beta"]["value"] == pytest.approx(empyrical.beta(book, bench), rel=1e-7)
    assert positions["AAPL"]["beta"] == pytest.approx(empyrical.beta(rets[:, 0], bench), rel=1e-7)
    corr = reply["correlation"]
    assert corr["symbols"] == ["AAPL", "GOOGL"]
    assert corr["matrix"][0][1] == pytest.approx(np.corrcoef(rets.T)[0, 1], abs=1e-6)
    assert reply["concentration"]["largest"]["symbol"] == max(values, key=values.__getitem__)
    assert reply["concentration"]["hhi"] == pytest.approx(float(np.sum(weights ** 2)))
    assert sum(p["volatility_contribution"] for p in reply["positions"]) == pytest.approx(1.0, abs=1e-5)


def test_mixed_book_is_valued_at_us_closes_and_matches_an_as_of_join(seeded: Seeded,
                                                                     markets: MarketRegistry) -> None:
    reply = evaluate_risk(seeded.store, markets, _request({"AAPL": 10, "BTCUSDT": "0.05"}))
    assert reply["status"] == "ok" and reply["lookback"]["anchor_market"] == "US"
    assert reply["currency"] == "USD/USDT" and any("one to one" in n for n in reply["notes"])
    btc = {p["symbol"]: p for p in reply["positions"]}["BTCUSDT"]
    assert btc["price"] == seeded.live["BTCUSDT"]  # valued at the open candle, kept out of the returns
    assert btc["candles"] == 364  # closed ones in the window; the open one prices the position

    us = _frame(seeded, "AAPL")
    crypto = _frame(seeded, "BTCUSDT").rename(columns={"t": "bt"})
    merged = pd.merge_asof(us, crypto, left_on="t", right_on="bt", direction="backward").dropna()
    merged = merged[merged["bt"] > merged["t"].shift(1, fill_value=-1)]  # fresh since the previous US close
    values = np.array([10 * seeded.closes["AAPL"][-1], 0.05 * seeded.live["BTCUSDT"]])
    book = merged[["AAPL", "BTCUSDT"]].pct_change().dropna().to_numpy() @ (values / values.sum())
    _check_against_empyrical(reply, book, markets.get("US").bars_per_year("1d"))
    assert reply["lookback"]["first_candle"] == int(merged["t"].iloc[0])


def test_crypto_book_annualises_with_365_days_and_benchmarks_bitcoin(seeded: Seeded,
                                                                     markets: MarketRegistry) -> None:
    reply = evaluate_risk(seeded.store, markets, _request({"ETHUSDT": 2, "BTCUSDT": "0.1"}, horizon=5))
    assert reply["lookback"]["anchor_market"] == "CRYPTO"
    assert reply["lookback"]["bars_per_year"] == pytest.approx(365.25)
    assert reply["beta"]["benchmark"] == "BTCUSDT" and reply["beta"]["value"] is not None
    frame = _frame(seeded, "ETHUSDT").merge(_frame(seeded, "BTCUSDT"), on="t")
    values = np.array([2 * seeded.closes["ETHUSDT"][-1], 0.1 * seeded.live["BTCUSDT"]])
    book = frame[["ETHUSDT", "BTCUSDT"]].pct_change().dropna().to_numpy() @ (values / values.sum())
    five = np.array([np.prod(1 + book[i:i + 5]) - 1 for i in range(book.size - 4)])
    row = next(r for r in reply["var"] if r["confidence"] == 0.99)
    assert row["horizon_bars"] == 5 and row["samples"] == five.size
    assert row["historical"]["var"] == pytest.approx(-empyrical.value_at_risk(five, cutoff=0.01), rel=1e-8)
    assert row["parametric"]["var"] == pytest.approx(
        -(5 * book.mean() - 2.3263478740408408 * np.sqrt(5) * book.std(ddof=1)), rel=1e-6)
    gross = reply["total"]["gross_exposure"]
    assert row["historical"]["var_value"] == pytest.approx(row["historical"]["var"] * gross, rel=1e-6)


def test_positions_without_enough_history_are_named_and_left_out(seeded: Seeded, markets: MarketRegistry) -> None:
    reply = evaluate_risk(seeded.store, markets, _request({"AAPL": 10, "NEWUSDT": 5, "ZZZZ": 1}))
    assert reply["status"] == "partial"
    named = {s["symbol"]: s for s in reply["insufficient_history"]}
    assert named["NEWUSDT"]["candles"] == 12 and named["NEWUSDT"]["needed"] == 31
    assert "no 1d candles" in named["ZZZZ"]["reason"]
    positions = {p["symbol"]: p for p in reply["positions"]}
    assert positions["NEWUSDT"]["status"] == "insufficient_history" and positions["NEWUSDT"]["market_value"] > 0
    assert positions["ZZZZ"]["status"] == "no_data" and positions["ZZZZ"]["market_value"] is None
    assert reply["total"]["covered_positions"] == 1
    assert 0 < reply["total"]["covered_weight"] < 1
    assert reply["correlation"]["symbols"] == ["AAPL"] and reply["volatility"]["annualised"] > 0


def test_a_book_with_no_history_answers_insufficient_history_with_the_reasons(seeded: Seeded,
                                                                              markets: MarketRegistry) -> None:
    reply = evaluate_risk(seeded.store, markets, _request({"IPO": 10, "NEWUSDT": 1}))
    assert reply["status"] == "insufficient_history"
    assert reply["volatility"] is None and reply["var"] is None and reply["beta"] is None
    assert {s["symbol"] for s in reply["insufficient_history"]} == {"IPO", "NEWUSDT"}
    assert "insufficient_history" in reply["message"]
    assert reply["total"]["market_value"] > 0  # values are known even without history


def test_a_benchmark_without_history_is_named_and_beta_is_null(seeded: Seeded, markets: MarketRegistry) -> None:
    reply = evaluate_risk(seeded.store, markets, _request({"AAPL": 10}, benchmark="IPO"))
    assert reply["beta"]["value"] is None and reply["beta"]["benchmark"] == "IPO"
    assert {"symbol": "IPO", "role": "benchmark"}.items() <= reply["insufficient_history"][0].items()
    assert reply["volatility"]["annualised"] > 0


def test_weights_with_a_notional_give_money_figures(seeded: Seeded, markets: MarketRegistry) -> None:
    request = RiskRequest(holdings=[Holding("AAPL", weight=3.0), Holding("MSFT", weight=1.0)], end_ms=END_MS,
                          notional=Decimal("200000"), default_benchmarks=BENCHMARKS)
    reply = evaluate_risk(seeded.store, markets, request)
    positions = {p["symbol"]: p for p in reply["positions"]}
    assert positions["AAPL"]["weight"] == pytest.approx(0.75) and positions["AAPL"]["market_value"] == 150_000
    assert positions["AAPL"]["quantity"] is None and reply["weighting"] == "weight"
    row = reply["var"][0]
    assert row["parametric"]["var_value"] == pytest.approx(row["parametric"]["var"] * 200_000, rel=1e-6)
    no_notional = evaluate_risk(seeded.store, markets, RiskRequest(
        holdings=[Holding("AAPL", weight=0.5), Holding("MSFT", weight=0.5)], end_ms=END_MS))
    assert no_notional["var"][0]["historical"]["var_value"] is None
    assert no_notional["total"]["market_value"] is None and no_notional["beta"]["value"] is None


def test_a_short_position_weighs_by_size_and_hedges_the_book(seeded: Seeded, markets: MarketRegistry) -> None:
    long_only = evaluate_risk(seeded.store, markets, _request({"AAPL": 100}))
    hedged = evaluate_risk(seeded.store, markets, _request({"AAPL": 100, "SPY": -40}))
    spy = {p["symbol"]: p for p in hedged["positions"]}["SPY"]
    assert spy["market_value"] < 0 and spy["weight"] < 0
    assert hedged["total"]["gross_exposure"] > hedged["total"]["market_value"]
    assert hedged["concentration"]["hhi"] < long_only["concentration"]["hhi"] == 1.0
