"""scan.market computed by real chDB and by a real ClickHouse server on candles with known answers: every
field, every operator, the drop counts, paging and sorting; RSI, EMA and ATR against TA-Lib on the same
candles."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import talib
from scan_data import AS_OF, random_walk, seed

from tacore.analytics.scan import scan_market
from tacore.analytics.scan_criteria import ScanParams
from tacore.analytics.scan_fields import warmup_candles
from tacore.markets import MarketRegistry, load_markets
from tacore.store.klines import KlineStore

THREE = ["AAAUSDT", "BBBUSDT", "EEEUSDT"]  # last prices 399, 101, 120


@pytest.fixture(scope="module")
def store(module_kline_dsn: str) -> Iterator[KlineStore]:
    seed(module_kline_dsn)  # embedded chDB, then a ClickHouse server (tests/conftest.py)
    store = KlineStore(module_kline_dsn)
    store.open()
    yield store
    store.close()


@pytest.fixture(scope="module")
def markets() -> MarketRegistry:
    return load_markets(None)


def scan(store: KlineStore, markets: MarketRegistry, market: str = "CRYPTO", **criteria: Any) -> dict[str, Any]:
    params = ScanParams.model_validate({"market": market, "criteria": {"as_of": AS_OF, **criteria}})
    return scan_market(store, markets, params)


def symbols(reply: dict[str, Any]) -> list[str]:
    return [r["symbol"] for r in reply["results"]]


def values(store: KlineStore, markets: MarketRegistry, symbol: str, *fields: dict[str, Any]) -> dict[str, Any]:
    """The fields' values for one symbol (each asked with ``nempty`` so none is filtered out)."""
    reply = scan(store, markets, include=[symbol], filters=[{**f, "op": "nempty"} for f in fields])
    assert symbols(reply) == [symbol], reply["filters"]
    found: dict[str, Any] = reply["results"][0]["values"]
    return found


def test_design_document_payload_scans_the_us_market(store: KlineStore, markets: MarketRegistry) -> None:
    reply = scan(store, markets, "US", min_volume=1_000_000, price_range=[10, 500])
    assert reply["market"] == "US" and reply["quote_currency"] == "USD" and reply["as_of"] == AS_OF
    # AAPL trades 3.9M USD over the session, MSFT is above 500, TSLA trades 39,000 USD, ZZZZ 1.95M at 12 USD
    assert symbols(reply) == ["AAPL", "ZZZZ"]
    assert reply["scanned"] == 4 and reply["matched"] == 2
    assert [(f["source"], f["field"], f["dropped"], f["remaining"]) for f in reply["filters"]] == [
        ("criteria.min_volume", "day_quote_volume", 1, 3), ("criteria.price_range", "price", 1, 2)]
    aapl = reply["results"][0]["values"]
    assert aapl["day_quote_volume"] == pytest.approx(3_900_000) and 229 < aapl["price"] < 231
    assert reply["candles"]["1m"]["candles"] == 4 * 390 and reply["candles"]["1d"]["symbols"] == 4
    assert "BTCUSDT" not in symbols(reply) and len(reply["missing"]) == 27 and "NVDA" in reply["missing"]


def test_min_volume_is_the_last_day_of_minute_candles(store: KlineStore, markets: MarketRegistry) -> None:
    reply = scan(store, markets, min_volume=1_000_000)
    # AAA 1,440,000 USDT; BBB 720,000; CCC's 1,000 minutes (the others of the day are not stored) 1e9
    assert symbols(reply) == ["AAAUSDT", "CCCUSDT"]
    assert reply["results"][0]["values"]["day_quote_volume"] == pytest.approx(1_440_000)
    assert reply["results"][1]["values"]["day_quote_volume"] == pytest.approx(1e9)
    assert reply["candles"]["1m"] == {"candles": 3880, "symbols": 3, "from": reply["candles"]["1m"]["from"],
                                      "newest_open_time": AS_OF - AS_OF % 60_000 - 60_000}


def test_reads_one_version_per_candle_and_nothing_opening_after_as_of(store: KlineStore,
                                                                        markets: MarketRegistry) -> None:
    got = values(store, markets, "AAAUSDT", {"field": "price"}, {"field": "highest", "period": 3})
    assert got == {"price": 399.0, "highest(3)": 400.0}  # not the stale 999 nor the future 5000
    bbb = values(store, markets, "BBBUSDT", {"field": "change_pct", "period": 2})
    assert bbb["change_pct(2)"] == pytest.approx(100 * (101 - 103) / 103)  # the closed 103, not the reopened 1.0


def test_price_volume_and_window_fields_on_known_series(store: KlineStore, markets: MarketRegistry) -> None:
    got = values(store, markets, "AAAUSDT", {"field": "volume", "period": 3}, {"field": "quote_volume", "period": 2},
                 {"field": "relative_volume"}, {"field": "change_pct", "period": 10}, {"field": "sma"},
                 {"field": "highest"}, {"field": "lowest"}, {"field": "from_high_pct"}, {"field": "from_low_pct"},
                 {"field": "candle_age_s"})
    assert got["volume(3)"] == 50.0 and got["quote_volume(2)"] == 10 * 398 + 30 * 399
    assert got["relative_volume(10)"] == pytest.approx(3.0)
    assert got["change_pct(10)"] == pytest.approx(100 * 10 / 389)
    assert got["sma(20)"] == pytest.approx(389.5)
    assert got["highest(20)"] == 400.0 and got["lowest(20)"] == 379.0
    assert got["from_high_pct(20)"] == pytest.approx(-0.25) and got["from_low_pct(20)"] == pytest.approx(2000 / 379)
    assert got["candle_age_s"] == pytest.approx(30.0)
    assert values(store, markets, "EEEUSDT", {"field": "candle_age_s"})["candle_age_s"] == pytest.approx(3600.0)


def test_volatility_is_the_annualised_std_of_log_returns(store: KlineStore, markets: MarketRegistry) -> None:
    closes = random_walk(7, 300, 50.0)[0]
    got = values(store, markets, "CCCUSDT", {"field": "volatility"}, {"field": "volatility", "period": 5})
    for period in (20, 5):
        expected = np.std(np.diff(np.log(closes[-period - 1:])), ddof=1) * math.sqrt(365.25) * 100
        assert got[f"volatility({period})"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("symbol", "seed_", "n"), [("CCCUSDT", 7, 300), ("SOLUSDT", 11, 40)])
def test_rsi_ema_atr_equal_talib_on_the_same_candles(store: KlineStore, markets: MarketRegistry, symbol: str,
                                                      seed_: int, n: int) -> None:
    c, h, lo, _ = random_walk(seed_, n, 50.0 if seed_ == 7 else 20.0)
    got = values(store, markets, symbol, {"field": "rsi"}, {"field": "rsi", "period": 6}, {"field": "ema"},
                 {"field": "ema", "period": 30}, {"field": "atr"}, {"field": "atr_pct", "period": 5})

    def last(period: int) -> slice:
        return slice(-warmup_candles(period), None)

    assert got["rsi(14)"] == pytest.approx(talib.RSI(c[last(14)], 14)[-1], rel=1e-12, abs=1e-12)
    assert got["rsi(6)"] == pytest.approx(talib.RSI(c[last(6)], 6)[-1], rel=1e-12, abs=1e-12)
    assert got["ema(20)"] == pytest.approx(talib.EMA(c[last(20)], 20)[-1], rel=1e-12)
    assert got["ema(30)"] == pytest.approx(talib.EMA(c[last(30)], 30)[-1], rel=1e-12)
    assert got["atr(14)"] == pytest.approx(talib.ATR(h[last(14)], lo[last(14)], c[last(14)], 14)[-1], rel=1e-12)
    atr5 = talib.ATR(h[last(5)], lo[last(5)], c[last(5)], 5)[-1]
    assert got["atr_pct(5)"] == pytest.approx(100 * atr5 / c[-1], rel=1e-12)


def test_rsi_of_a_steady_rise_and_fall_is_100_and_0(store: KlineStore, markets: MarketRegistry) -> None:
    reply = scan(store, markets, include=["AAAUSDT", "BBBUSDT"], filters=[{"field": "rsi", "op": "nempty"}])
    assert {r["symbol"]: r["values"]["rsi(14)"] for r in reply["results"]} == {"AAAUSDT": 100.0, "BBBUSDT": 0.0}


@pytest.mark.parametrize(("op", "value", "expected"), [
    ("greater", 120, ["AAAUSDT"]),
    ("egreater", 120, ["AAAUSDT", "EEEUSDT"]),
    ("less", 120, ["BBBUSDT"]),
    ("eless", 120, ["BBBUSDT", "EEEUSDT"]),
    ("equal", 120, ["EEEUSDT"]),
    ("nequal", 120, ["AAAUSDT", "BBBUSDT"]),
    ("in_range", [101, 120], ["BBBUSDT", "EEEUSDT"]),
    ("not_in_range", [101, 120], ["AAAUSDT"]),
    ("in_range", [{"field": "lowest", "period": 60}, 200], ["BBBUSDT", "EEEUSDT"]),
    ("above%", [100, 20], ["AAAUSDT"]),  # more than 20 % above 100: EEE's 120 is not
    ("above%", [100, 19.9], ["AAAUSDT", "EEEUSDT"]),
    ("below%", [400, 50], ["BBBUSDT", "EEEUSDT"]),
    ("in_range%", [100, 0, 20], ["BBBUSDT", "EEEUSDT"]),
    ("not_in_range%", [100, 0, 20], ["AAAUSDT"]),
    ("greater", {"field": "sma"}, ["AAAUSDT", "EEEUSDT"]),
    ("crosses_above", 110, ["EEEUSDT"]),  # 100 yesterday, 120 today
    ("crosses_below", 390, []),  # AAA was above 390 yesterday too
    ("nempty", None, THREE),
    ("empty", None, []),
])
def test_each_operator_on_the_last_price(store: KlineStore, markets: MarketRegistry, op: str, value: Any,
                                         expected: list[str]) -> None:
    item: dict[str, Any] = {"field": "price", "op": op}
    if value is not None:
        item["value"] = value
    assert symbols(scan(store, markets, include=THREE, filters=[item])) == expected


@pytest.mark.parametrize(("op", "expected"), [
    ("crosses_above", ["EEEUSDT"]), ("crosses_below", ["FFFUSDT"]), ("crosses", ["EEEUSDT", "FFFUSDT"])])
def test_price_crossing_its_moving_average(store: KlineStore, markets: MarketRegistry, op: str,
                                           expected: list[str]) -> None:
    reply = scan(store, markets, include=["AAAUSDT", "BBBUSDT", "EEEUSDT", "FFFUSDT"],
                 filters=[{"field": "price", "op": op, "value": "sma"}])
    assert symbols(reply) == expected


def test_a_symbol_without_enough_candles_fails_the_filter_and_is_counted(store: KlineStore,
                                                                          markets: MarketRegistry) -> None:
    reply = scan(store, markets, include=["AAAUSDT", "DDDUSDT"], filters=[
        {"field": "price", "op": "greater", "value": 0}, {"field": "rsi", "op": "greater", "value": -1}])
    assert symbols(reply) == ["AAAUSDT"]
    assert [f["dropped"] for f in reply["filters"]] == [0, 1]
    empty = scan(store, markets, include=["AAAUSDT", "DDDUSDT"], filters=[{"field": "sma", "op": "empty"}])
    assert symbols(empty) == ["DDDUSDT"] and empty["results"][0]["values"] == {"sma(20)": None}


def test_drop_counts_follow_the_chain_order(store: KlineStore, markets: MarketRegistry) -> None:
    chain = [{"field": "candle_age_s", "op": "less", "value": 86_400},  # drops OLD (40 days stale)
             {"field": "rsi", "op": "nempty"},  # drops DDD (10 candles)
             {"field": "price", "op": "greater", "value": 60},  # drops CCC, SOL (prices under 60)
             {"field": "price", "op": "crosses", "value": "sma"}]  # keeps EEE, FFF
    reply = scan(store, markets, filters=chain, sort_by="price")
    assert reply["scanned"] == 8
    assert [(f["dropped"], f["remaining"]) for f in reply["filters"]] == [(1, 7), (1, 6), (2, 4), (2, 2)]
    assert symbols(reply) == ["EEEUSDT", "FFFUSDT"] and reply["matched"] == 2
    assert reply["results"][0]["values"]["price"] == 120.0


def test_sorting_and_paging(store: KlineStore, markets: MarketRegistry) -> None:
    everyone = scan(store, markets, filters=[{"field": "price", "op": "nempty"}], sort_by="price", limit=100)
    prices = [r["values"]["price"] for r in everyone["results"]]
    assert prices == sorted(prices, reverse=True) and everyone["order"] == "desc"
    page = scan(store, markets, filters=[{"field": "price", "op": "nempty"}], sort_by="price", order="asc",
                offset=2, limit=3)
    assert [r["values"]["price"] for r in page["results"]] == sorted(prices)[2:5]
    assert page["count"] == 3 and page["matched"] == len(prices) and page["offset"] == 2
    by_symbol = scan(store, markets, order="desc", limit=3)
    assert symbols(by_symbol) == ["SOLUSDT", "FFFUSDT", "EEEUSDT"] and by_symbol["sort_by"] == "symbol"
    # a symbol lacking the sort field sorts last, whatever the order
    rsi_first = scan(store, markets, sort_by="rsi", order="asc", include=["AAAUSDT", "BBBUSDT", "DDDUSDT"])
    assert symbols(rsi_first) == ["BBBUSDT", "AAAUSDT", "DDDUSDT"]


def test_include_exclude_patterns_and_the_listed_symbols_without_candles(store: KlineStore,
                                                                         markets: MarketRegistry) -> None:
    reply = scan(store, markets, include=["[AB].*", "SOL.*"], exclude=["AAA.*"])
    assert symbols(reply) == ["BBBUSDT", "SOLUSDT"] and reply["scanned"] == 2
    # the listed symbols the patterns keep that have no candle: SOLUSDT has some
    assert reply["missing"] == ["ADAUSDT", "BNBUSDT", "BTCUSDT"]
    everything = scan(store, markets)
    assert everything["missing"] == ["ADAUSDT", "BNBUSDT", "BTCUSDT", "DOGEUSDT", "ETHUSDT", "XRPUSDT"]


def test_a_filter_on_another_timeframe(store: KlineStore, markets: MarketRegistry) -> None:
    reply = scan(store, markets, filters=[{"field": "quote_volume", "period": 1000, "timeframe": "1m",
                                           "op": "greater", "value": 600_000}])
    assert symbols(reply) == ["AAAUSDT", "CCCUSDT"]  # 1,000 minutes: AAA 1.0M, BBB 0.5M, CCC 1e9
    assert set(reply["candles"]) == {"1m", "1d"}


def test_a_scan_of_nothing_answers_zeros_not_an_error(store: KlineStore, markets: MarketRegistry) -> None:
    reply = scan(store, markets, include=["NOPE.*"], filters=[{"field": "rsi", "op": "less", "value": 30}])
    assert (reply["scanned"], reply["matched"], reply["results"]) == (0, 0, [])
    assert reply["filters"][0]["dropped"] == 0 and reply["candles"]["1d"]["newest_open_time"] is None
    stale = scan(store, markets, as_of=AS_OF - 400 * 86_400_000)  # before any candle
    assert stale["scanned"] == 0 and stale["missing"] == sorted(markets.get("CRYPTO").universe)


def test_a_timeframe_without_candles_joins_as_empty_for_every_symbol(store: KlineStore,
                                                                    markets: MarketRegistry) -> None:
    plain = scan(store, markets, min_volume=1)
    three = scan(store, markets, min_volume=1, filters=[{"field": "price", "timeframe": "5m", "op": "empty"}])
    assert set(three["candles"]) == {"1m", "5m", "1d"} and three["candles"]["5m"]["candles"] == 0
    assert symbols(three) == symbols(plain) and three["scanned"] == plain["scanned"]
    assert all(r["values"]["price@5m"] is None for r in three["results"])
