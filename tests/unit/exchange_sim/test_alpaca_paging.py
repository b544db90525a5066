"""Bars requests as Alpaca checks them, and paging: tokens, a limit across symbols, every bar once."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from tacore.exchange_sim.alpaca.market import UsMarket
from tacore.exchange_sim.alpaca.paging import collect_page
from tacore.exchange_sim.alpaca.query import AlpacaError, decode_page_token, parse_bars_query, parse_time
from tacore.exchange_sim.alpaca.sessions import TradingMinutes
from tacore.exchange_sim.alpaca.timeframes import Timeframe, Unit
from tacore.markets import calendar_named
from tacore.markets.calendar import SessionCalendar


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


NOW = ms("2024-07-02T15:00:30")


@pytest.fixture(scope="module")
def market() -> UsMarket:
    cal = calendar_named("XNYS")
    assert isinstance(cal, SessionCalendar)
    return UsMarket(1, frozenset({"AAPL", "MSFT", "TSLA"}), TradingMinutes(cal))


def query(**params: str) -> object:
    return parse_bars_query({"timeframe": "1Min", "symbols": "AAPL", **params}, NOW, sip_allowed=True)


@pytest.mark.parametrize(("params", "message"), [
    ({"symbols": ""}, "missing symbols"),
    ({"timeframe": ""}, "missing timeframe"),
    ({"timeframe": "1Minute"}, "invalid timeframe"),
    ({"timeframe": "60Min"}, "invalid timeframe"),
    ({"limit": "0"}, "invalid limit, limit must be between 1 and 10000"),
    ({"limit": "10001"}, "invalid limit, limit must be between 1 and 10000"),
    ({"limit": "ten"}, "invalid limit"),
    ({"sort": "up"}, "invalid sort"),
    ({"feed": "nasdaq"}, "invalid feed"),
    ({"adjustment": "raw,splits"}, "invalid adjustment"),
    ({"currency": "usd"}, "invalid currency"),
    ({"start": "2024-13-01"}, "invalid start"),
    ({"start": "yesterday"}, "invalid start"),
    ({"end": "2024-07-01T25:00:00Z"}, "invalid end"),
    ({"start": "2024-07-02", "end": "2024-07-01"}, "end should not be before start"),
    ({"page_token": "not base64!"}, "invalid page token"),
    ({"symbols": "AAPL,BAD SYMBOL"}, "invalid symbol: BAD SYMBOL"),
])
def test_bad_parameters_are_400_with_alpacas_message(params: dict[str, str], message: str) -> None:
    with pytest.raises(AlpacaError) as err:
        query(**params)
    assert (err.value.status, err.value.code, err.value.message) == (400, 40010001, message)


def test_recent_sip_data_needs_a_sip_plan() -> None:
    with pytest.raises(AlpacaError) as err:
        parse_bars_query({"timeframe": "1Min", "symbols": "AAPL", "feed": "sip", "end": "2024-07-02T14:59:00Z"}, NOW,
                         sip_allowed=False)
    assert err.value.status == 403 and err.value.message == "subscription does not permit querying recent SIP data"
    old = parse_bars_query({"timeframe": "1Min", "symbols": "AAPL", "feed": "sip", "start": "2024-06-28",
                            "end": "2024-07-01"}, NOW,
                           sip_allowed=False)
    assert old.feed == "sip"
    delayed = parse_bars_query({"timeframe": "1Min", "symbols": "AAPL", "feed": "sip"}, NOW, sip_allowed=False)
    assert delayed.end_ms == NOW - 15 * 60_000  # without real-time SIP, the default end is 15 minutes ago
    free = parse_bars_query({"timeframe": "1Min", "symbols": "AAPL"}, NOW, sip_allowed=False)
    assert free.feed == "iex" and free.end_ms == NOW


def test_defaults_and_time_formats() -> None:
    q = parse_bars_query({"timeframe": "5T", "symbols": "TSLA,AAPL,TSLA"}, NOW, sip_allowed=True)
    assert q.symbols == ("AAPL", "TSLA") and q.limit == 1000 and not q.descending and q.feed == "sip"
    assert q.start_ms == ms("2024-07-02T04:00:00") and q.end_ms == NOW  # New York midnight .. now
    assert parse_time("2024-01-03T09:30:00-05:00", "start") == ms("2024-01-03T14:30:00")
    assert parse_time("2024-01-03T14:30:00.123456789Z", "start") == ms("2024-01-03T14:30:00") + 123
    assert parse_time("2024-07-02", "end", end_of_day=True) == ms("2024-07-03T04:00:00") - 1


def test_paging_serves_every_bar_exactly_once_across_symbols(market: UsMarket) -> None:
    params = {"symbols": "TSLA,MSFT,AAPL,NOPE", "timeframe": "5Min", "start": "2024-06-24", "limit": "97"}
    pages, seen = 0, []
    token: str | None = None
    while True:
        q = parse_bars_query({**params, **({"page_token": token} if token else {})}, NOW, sip_allowed=True)
        page = collect_page(market, q, NOW)
        pages += 1
        assert sum(len(c) for c in page.bars.values()) <= 97
        for symbol, cols in page.bars.items():
            seen.extend((symbol, t) for t in cols.start.tolist())
        token = page.next_page_token
        if token is None:
            break
    full = [(s, t) for s in ("AAPL", "MSFT", "TSLA") for t in market.bars(
        s, Timeframe(5, Unit.MINUTE), "sip", ms("2024-06-24T04:00:00"), NOW, NOW, limit=10_000).start.tolist()]
    assert seen == full  # symbol order, then time order, nothing twice or missing
    assert pages == -(-len(full) // 97)


def test_a_full_last_page_has_no_token_and_desc_pages_run_backwards(market: UsMarket) -> None:
    total = len(market.bars("AAPL", Timeframe(1, Unit.HOUR), "sip", ms("2024-07-01T04:00:00"), NOW, NOW))
    q = parse_bars_query({"symbols": "AAPL", "timeframe": "1Hour", "start": "2024-07-01", "limit": str(total)}, NOW,
                         sip_allowed=True)
    assert collect_page(market, q, NOW).next_page_token is None
    q = parse_bars_query({"symbols": "AAPL", "timeframe": "1Hour", "start": "2024-07-01", "limit": "3",
                          "sort": "desc"}, NOW, sip_allowed=True)
    first = collect_page(market, q, NOW)
    assert first.next_page_token is not None
    q2 = parse_bars_query({"symbols": "AAPL", "timeframe": "1Hour", "start": "2024-07-01", "limit": "3",
                           "sort": "desc", "page_token": first.next_page_token}, NOW, sip_allowed=True)
    second = collect_page(market, q2, NOW)
    times = first.bars["AAPL"].start.tolist() + second.bars["AAPL"].start.tolist()
    assert times == sorted(times, reverse=True) and len(set(times)) == 6


def test_page_tokens_have_alpacas_shape_and_are_checked() -> None:
    q = parse_bars_query({"symbols": "AAPL", "timeframe": "1Day"}, NOW, sip_allowed=True)
    from tacore.exchange_sim.alpaca.query import encode_page_token

    token = encode_page_token("AAPL", q.timeframe, ms("2022-04-11T04:00:00"))
    assert base64.b64decode(token).decode() == "AAPL|D|2022-04-11T04:00:00.000000000Z"
    assert decode_page_token(token, ("AAPL",), q.timeframe) == ("AAPL", ms("2022-04-11T04:00:00"))
    for symbols, timeframe in ((("MSFT",), q.timeframe), (("AAPL",), Timeframe(1, Unit.MINUTE))):
        with pytest.raises(AlpacaError):
            decode_page_token(token, symbols, timeframe)
