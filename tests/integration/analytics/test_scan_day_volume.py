"""The design document's ``min_volume`` (field ``day_quote_volume``): the traded value of the 1m candles opening
in the last day, a time window from the market's calendar, computed by real chDB and a real ClickHouse server.
Missing minutes count as nothing traded; on a session market the day is a regular session's trading time,
back across the weekend, a holiday and an early close, without the minutes outside sessions."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from tacore.analytics.scan import scan_market
from tacore.analytics.scan_criteria import ScanParams
from tacore.markets import MarketRegistry, load_markets
from tacore.store.klines import KlineRow, KlineStore, version_of

MINUTE = 60_000


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


#: crypto: half a minute into a minute, so no candle opens exactly a day before
CRYPTO_AS_OF = ms("2025-03-12T10:00:30")
#: NYSE: Monday 2025-07-07, half an hour into the session; Friday 07-04 was a holiday, Thursday closed early
US_AS_OF = ms("2025-07-07T14:00:00")


def minutes(symbol: str, open_times: Sequence[int], quote: float, *, open_last: bool = False,
            event: int | None = None) -> list[KlineRow]:
    rows = []
    for i, t in enumerate(open_times):
        closed = not (open_last and i == len(open_times) - 1)
        at = t + MINUTE - 1 if closed else (event if event is not None else t + 1)
        rows.append(KlineRow(symbol, "1m", t, t + MINUTE - 1, 10.0, 10.0, 10.0, 10.0, quote / 10, quote, 1, 0.0, 0.0,
                             closed, at, version_of(closed, at)))
    return rows


def span(start: str, count: int) -> list[int]:
    first = ms(start)
    return [first + i * MINUTE for i in range(count)]


@pytest.fixture(scope="module")
def store(module_kline_dsn: str) -> Iterator[KlineStore]:
    store = KlineStore(module_kline_dsn)
    store.open()
    minute = CRYPTO_AS_OF - CRYPTO_AS_OF % MINUTE
    # GAP: a candle every other minute for two days (no trade in between), the newest still open
    gap = sorted(minute - 2 * k * MINUTE for k in range(1440))
    store.insert(minutes("GAPUSDT", gap, 1000.0, open_last=True, event=CRYPTO_AS_OF - 10_000))
    # FULL: every minute of the last day
    store.insert(minutes("FULLUSDT", [minute - k * MINUTE for k in range(1440)], 1000.0))
    # STALE: today's daily candle, but minutes two to three days ago only
    store.insert(minutes("STALEUSDT", [minute - (2880 + k) * MINUTE for k in range(1440)], 1e9))
    today = CRYPTO_AS_OF - CRYPTO_AS_OF % 86_400_000
    store.insert([KlineRow("STALEUSDT", "1d", today, today + 86_399_999, 10.0, 10.0, 10.0, 10.0, 1.0, 10.0, 1, 0.0,
                           0.0, False, CRYPTO_AS_OF - 1000, version_of(False, CRYPTO_AS_OF - 1000))])
    # an older update of GAP's open candle, written after the newer one: never counted
    store.insert(minutes("GAPUSDT", [minute], 999_000.0, open_last=True, event=CRYPTO_AS_OF - 20_000))
    # WKND (US): Wednesday's session at 10 a minute, Thursday's early-closing session at 100, an hour after
    # Thursday's close and Monday's pre-market at 1e6, Monday's first half hour at 1,000
    store.insert(minutes("WKND", span("2025-07-02T13:30:00", 390), 10.0)
                 + minutes("WKND", span("2025-07-03T13:30:00", 210), 100.0)
                 + minutes("WKND", span("2025-07-03T17:00:00", 60), 1e6)
                 + minutes("WKND", span("2025-07-07T12:00:00", 90), 1e6)
                 + minutes("WKND", span("2025-07-07T13:30:00", 30), 1000.0))
    yield store
    store.close()


@pytest.fixture(scope="module")
def markets() -> MarketRegistry:
    return load_markets(None)


def scan(store: KlineStore, markets: MarketRegistry, market: str, as_of: int, **criteria: Any) -> dict[str, Any]:
    params = ScanParams.model_validate({"market": market, "criteria": {"as_of": as_of, **criteria}})
    return scan_market(store, markets, params)


def day_values(reply: dict[str, Any], key: str = "day_quote_volume") -> dict[str, Any]:
    return {r["symbol"]: r["values"][key] for r in reply["results"]}


def test_the_last_day_is_a_time_window_so_missing_minutes_count_as_nothing_traded(
        store: KlineStore, markets: MarketRegistry) -> None:
    reply = scan(store, markets, "CRYPTO", CRYPTO_AS_OF, filters=[{"field": "day_quote_volume", "op": "nempty"}],
                 sort_by="day_quote_volume")
    # GAP traded in 720 of the last 1,440 minutes (its open candle once, at its latest version); FULL in all
    assert day_values(reply) == {"FULLUSDT": 1_440_000.0, "GAPUSDT": 720_000.0}
    assert [r["symbol"] for r in reply["results"]] == ["FULLUSDT", "GAPUSDT"]
    assert reply["fields"][0] == {"key": "day_quote_volume", "field": "day_quote_volume", "period": None,
                                  "timeframe": "1m", "min_candles": 1, "candles_read": 1440}
    # quote_volume(period) stays the last `period` candles, however far back they go: GAP's 1,440 span two days
    # (read in the same scan, so the minutes' window is two days long and the day's sum still takes one)
    both = scan(store, markets, "CRYPTO", CRYPTO_AS_OF, include=["GAPUSDT"], min_volume=0, filters=[
        {"field": "quote_volume", "period": 1440, "timeframe": "1m", "op": "nempty"}])
    assert both["results"][0]["values"] == {"day_quote_volume": 720_000.0, "quote_volume(1440)@1m": 1_440_000.0}


def test_min_volume_keeps_the_symbols_that_traded_enough_in_the_last_day(store: KlineStore,
                                                                          markets: MarketRegistry) -> None:
    reply = scan(store, markets, "CRYPTO", CRYPTO_AS_OF, min_volume=1_000_000)
    assert [r["symbol"] for r in reply["results"]] == ["FULLUSDT"]
    # GAP traded 720,000; STALE has no value for the last day, which fails any threshold
    assert reply["filters"][0] == {"source": "criteria.min_volume", "field": "day_quote_volume", "op": "egreater",
                                   "value": 1_000_000.0, "dropped": 2, "remaining": 1}
    assert reply["scanned"] == 3


def test_a_symbol_without_minutes_in_the_last_day_has_no_day_volume(store: KlineStore,
                                                                    markets: MarketRegistry) -> None:
    reply = scan(store, markets, "CRYPTO", CRYPTO_AS_OF, include=["STALEUSDT"],
                 filters=[{"field": "price", "op": "nempty"}, {"field": "day_quote_volume", "op": "empty"}])
    assert day_values(reply) == {"STALEUSDT": None}  # scanned on its daily candle, no value for the last day
    assert scan(store, markets, "CRYPTO", CRYPTO_AS_OF, include=["STALEUSDT"], min_volume=0)["matched"] == 0


def test_the_last_day_of_a_session_market_spans_the_weekend_and_skips_hours_outside_sessions(
        store: KlineStore, markets: MarketRegistry) -> None:
    reply = scan(store, markets, "US", US_AS_OF, include=["WKND"], min_volume=0)
    # Monday's first 30 minutes, Thursday's 210 (closed early), Wednesday's last 150: 390 minutes of trading
    assert day_values(reply) == {"WKND": 30 * 1000.0 + 210 * 100.0 + 150 * 10.0}
    assert reply["fields"][0]["candles_read"] == 390
    # on the Saturday before: Thursday's session and Wednesday's last 180 minutes
    saturday = scan(store, markets, "US", ms("2025-07-05T16:00:00"), include=["WKND"], min_volume=0)
    assert day_values(saturday) == {"WKND": 210 * 100.0 + 180 * 10.0}
